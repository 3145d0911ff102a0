package app_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestBulkReachesTheReconciler: users and a mapped group created in one
// POST /Bulk (the group's members given by bulkId) get their roles like
// the same single requests would, and every operation is audited.
func TestBulkReachesTheReconciler(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:BulkRequest"},
		"Operations": []any{
			map[string]any{"method": "POST", "path": "/Groups", "bulkId": "admins", "data": map[string]any{
				"displayName": "Intercom Admins", "members": []any{map[string]any{"value": "bulkId:ann"}}}},
			map[string]any{"method": "POST", "path": "/Users", "bulkId": "ann", "data": map[string]any{"userName": "ann@example.com"}},
			map[string]any{"method": "POST", "path": "/Users", "bulkId": "ben", "data": map[string]any{"userName": "ben@example.com"}},
		},
	}
	var out struct {
		Operations []struct{ BulkID, Status, Location string }
	}
	_ = json.Unmarshal(e.mustDo(http.MethodPost, e.scim+"/Bulk", e.token, body, 200), &out)
	ids := map[string]string{}
	for _, op := range out.Operations {
		if op.Status != "201" {
			t.Fatalf("operation %s: %s", op.BulkID, op.Status)
		}
		ids[op.BulkID] = op.Location[len(op.Location)-36:]
	}
	e.idle()
	e.expect(ids["ann"], "admin", true)
	e.expect(ids["ben"], "", false)
	if n := len(e.audit("type=scim.user.created")); n != 2 {
		t.Fatalf("%d scim.user.created events, want 2", n)
	}
	if n := len(e.audit("type=scim.group.created")); n != 1 {
		t.Fatalf("%d scim.group.created events, want 1", n)
	}
}
