package reconcile

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
)

// userDocument is the SCIM User as the policy sees it: core attributes and
// the enterprise extension under its URN.
// Only the top level is copied: a stored resource is immutable, and the
// input is only read.
func userDocument(u *store.Resource) map[string]any {
	doc := make(map[string]any, len(u.Attrs)+4)
	maps.Copy(doc, u.Attrs)
	doc["id"] = u.ID
	doc["userName"] = u.Name
	if u.ExternalID != "" {
		doc["externalId"] = u.ExternalID
	}
	schemas := []any{schema.UserURN}
	if _, ok := doc[schema.EnterpriseUserURN]; ok {
		schemas = append(schemas, schema.EnterpriseUserURN)
	}
	doc["schemas"] = schemas
	return doc
}

// teammateInput builds the decision input of one user from a snapshot.
func teammateInput(snap *store.Snapshot, u *store.Resource, cur *Teammate) policy.TeammateInput {
	in := policy.TeammateInput{User: userDocument(u)}
	for _, m := range snap.GroupsOf(u.ID) {
		g, ok := snap.Resource(store.KindGroup, m.GroupID)
		if !ok {
			continue
		}
		in.Groups = append(in.Groups, policy.Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.Name})
	}
	if cur != nil {
		in.Current = policy.Current{Role: cur.Role, Access: cur.Access}
	}
	return in
}

// inputDigest identifies a decision input: with the policy revision, equal
// digests give equal decisions (policies are input-only and deterministic).
// It is the hex SHA-256 of an unambiguous binary encoding of the input
// (type tags, lengths, object keys sorted), built without reflection: after
// a policy change it is computed for every teammate. "" means the input
// could not be encoded.
func inputDigest(in policy.TeammateInput) string {
	bp := digestBufs.Get().(*[]byte)
	b := (*bp)[:0]
	var ok bool
	if b, ok = appendDigestValue(b, in.User, 0); !ok {
		return ""
	}
	b = appendDigestLen(b, 'g', len(in.Groups))
	for _, g := range in.Groups {
		b = appendDigestString(b, g.ID)
		b = appendDigestString(b, g.ExternalID)
		b = appendDigestString(b, g.DisplayName)
	}
	b = appendDigestString(b, in.Current.Role)
	b = strconv.AppendBool(b, in.Current.Access)
	sum := sha256.Sum256(b)
	*bp = b
	digestBufs.Put(bp)
	return hex.EncodeToString(sum[:])
}

// digestBufs recycles the encoding buffers of inputDigest.
var digestBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func appendDigestLen(b []byte, tag byte, n int) []byte {
	return binary.AppendUvarint(append(b, tag), uint64(n))
}

func appendDigestString(b []byte, s string) []byte {
	return append(appendDigestLen(b, 's', len(s)), s...)
}

// appendDigestValue appends the encoding of a decoded JSON value. Types
// other than those encoding/json decodes to are encoded as their JSON.
func appendDigestValue(b []byte, v any, depth int) ([]byte, bool) {
	if depth > 64 {
		return b, false
	}
	switch v := v.(type) {
	case nil:
		return append(b, 'n'), true
	case bool:
		if v {
			return append(b, 't'), true
		}
		return append(b, 'f'), true
	case string:
		return appendDigestString(b, v), true
	case float64:
		return binary.BigEndian.AppendUint64(append(b, 'd'), math.Float64bits(v)), true
	case json.Number:
		return append(appendDigestLen(b, 'N', len(v)), v...), true
	case map[string]any:
		if v == nil {
			return append(b, 'n'), true
		}
		var stack [16]string
		keys := stack[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = appendDigestLen(b, 'm', len(keys))
		ok := true
		for _, k := range keys {
			b = appendDigestString(b, k)
			if b, ok = appendDigestValue(b, v[k], depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case []any:
		if v == nil {
			return append(b, 'n'), true
		}
		b = appendDigestLen(b, 'a', len(v))
		ok := true
		for _, e := range v {
			if b, ok = appendDigestValue(b, e, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return b, false
		}
		return append(appendDigestLen(b, 'j', len(j)), j...), true
	}
}
