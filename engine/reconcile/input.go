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
// the enterprise extension under its URN. schemas, when not nil, holds the
// "schemas" values to share between documents (see newSchemaValues).
// Only the top level is copied: a stored resource is immutable, and the
// input is only read.
func userDocument(u *store.Resource, schemas *schemaValues) map[string]any {
	doc := make(map[string]any, len(u.Attrs)+4)
	maps.Copy(doc, u.Attrs)
	doc["id"] = u.ID
	doc["userName"] = u.Name
	if u.ExternalID != "" {
		doc["externalId"] = u.ExternalID
	}
	if schemas == nil {
		schemas = newSchemaValues()
	}
	if _, ok := doc[schema.EnterpriseUserURN]; ok {
		doc["schemas"] = schemas.enterprise
	} else {
		doc["schemas"] = schemas.core
	}
	return doc
}

// schemaValues are the two possible "schemas" of a user document, which
// the documents built for one evaluation share (inputs are only read).
type schemaValues struct{ core, enterprise []any }

func newSchemaValues() *schemaValues {
	return &schemaValues{core: []any{schema.UserURN}, enterprise: []any{schema.UserURN, schema.EnterpriseUserURN}}
}

// teammateInput builds the decision input of one user. groupsOf gives
// the user's groups (see groupsLookup); schemas are shared (see
// userDocument).
func teammateInput(groupsOf func(userID string) []policy.Group, schemas *schemaValues, u *store.Resource, cur *Teammate) policy.TeammateInput {
	in := policy.TeammateInput{User: userDocument(u, schemas), Groups: groupsOf(u.ID)}
	if cur != nil {
		in.Current = policy.Current{Role: cur.Role, Access: cur.Access}
	}
	return in
}

// groupIndexMin is how many users an evaluation must have for
// groupsLookup to index every group first.
const groupIndexMin = 512

// groupsLookup returns a function giving the groups of a user as the
// policy sees them: the groups with a membership of the user, in group id
// order (memberships of groups that do not exist are left out). For many
// users it indexes the groups first instead of a store lookup per
// membership. The function is safe for concurrent use.
func groupsLookup(snap *store.Snapshot, users int) func(userID string) []policy.Group {
	if users < groupIndexMin {
		return func(userID string) []policy.Group {
			return groupsOfUser(snap, userID, func(id string) (policy.Group, bool) {
				g, ok := snap.Resource(store.KindGroup, id)
				if !ok {
					return policy.Group{}, false
				}
				return policy.Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.Name}, true
			})
		}
	}
	index := map[string]policy.Group{}
	snap.Resources(store.KindGroup, func(g *store.Resource) bool {
		index[g.ID] = policy.Group{ID: g.ID, ExternalID: g.ExternalID, DisplayName: g.Name}
		return true
	})
	return func(userID string) []policy.Group {
		return groupsOfUser(snap, userID, func(id string) (policy.Group, bool) {
			g, ok := index[id]
			return g, ok
		})
	}
}

// groupsOfUser lists a user's groups from the store's memberships.
func groupsOfUser(snap *store.Snapshot, userID string, group func(id string) (policy.Group, bool)) []policy.Group {
	ms := snap.GroupsOf(userID)
	if len(ms) == 0 {
		return nil
	}
	out := make([]policy.Group, 0, len(ms))
	for _, m := range ms {
		if g, ok := group(m.GroupID); ok {
			out = append(out, g)
		}
	}
	return out
}

// decidedInput is what a teammate's last decision was made from: enough to
// tell whether a new input is the same without keeping its digest, which a
// full pass after a policy change then need not compute. Stored resources
// are immutable, so the same resource means the same user document.
type decidedInput struct {
	user    *store.Resource
	groups  []policy.Group
	current policy.Current
}

func decidedInputOf(ev *evaluation) decidedInput {
	return decidedInput{user: ev.user, groups: ev.input.Groups, current: ev.input.Current}
}

// same reports whether ev's input equals this one: identical parts, or
// else equal digests (as inputDigest defines equality). refresh is true
// when the digests had to be compared: ev's parts are then the better ones
// to keep.
func (d decidedInput) same(ev *evaluation) (same, refresh bool) {
	if d.user == ev.user && d.current == ev.input.Current && slices.Equal(d.groups, ev.input.Groups) {
		return true, false
	}
	if d.user == nil {
		return false, false
	}
	last := inputDigest(policy.TeammateInput{User: userDocument(d.user, nil), Groups: d.groups, Current: d.current})
	if last != ev.inputDigest() {
		return false, false
	}
	return true, true
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
