package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/schema"
	"github.com/scimd/scimd/scim/store"
)

// userDocument is the SCIM User as the policy sees it: core attributes and
// the enterprise extension under its URN.
func userDocument(u *store.Resource) map[string]any {
	doc := store.CloneMap(u.Attrs)
	if doc == nil {
		doc = map[string]any{}
	}
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
func inputDigest(in policy.TeammateInput) string {
	b, err := json.Marshal(in.Map())
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
