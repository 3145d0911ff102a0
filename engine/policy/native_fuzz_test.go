package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzNativeMatchesOPA decides arbitrary teammates with the native table
// and with OPA, on the default policy and on a variant using every form of
// data the table accepts. Whenever the table decides, it must decide as
// OPA does; it may step aside for any input.
func FuzzNativeMatchesOPA(f *testing.F) {
	sets := []*Set{buildNoTests(f, shippedFiles(f)), buildNoTests(f, richVariant(f))}
	for _, s := range sets {
		if ok, why := s.Native(); !ok {
			f.Fatalf("no native table: %s", why)
		}
	}
	f.Add([]byte(`{"userName":"alice@example.com","active":true}`), "|Intercom Admins\n|Intercom Viewers", "viewer", true, false, byte(0))
	f.Add([]byte(`{"userName":"x","emails":[{"value":"BreakGlass@Example.com"}]}`), "|Intercom Admins", "admin", true, false, byte(1))
	f.Add([]byte(`{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Support","division":"Engineering"},"title":"Manager"}`), "00gSUPPORT|Sales", "", false, true, byte(1))
	f.Add([]byte(`{"active":false,"userName":"OPS-ROOT@example.com"}`), "Intercom Admins|renamed", "support", true, false, byte(1))
	f.Add([]byte(`{"flags":{"support":true},"nickName":"viewer-twin","emails":[{"type":"work"}]}`), "|Intercom Viewers\n|Intercom Viewers\n|Legacy-Owners", "owner", false, false, byte(1))
	f.Add([]byte(`{"userName":1e400,"emails":"breakglass@example.com","active":"false"}`), "\n|", "", true, true, byte(0))
	f.Fuzz(func(t *testing.T, userJSON []byte, groupLines, currentRole string, access, useNumber bool, variant byte) {
		s := sets[int(variant)%len(sets)]
		dec := json.NewDecoder(bytes.NewReader(userJSON))
		if useNumber {
			dec.UseNumber()
		}
		var v any
		user := map[string]any{}
		if err := dec.Decode(&v); err != nil {
			user["userName"] = string(userJSON)
		} else if m, ok := v.(map[string]any); ok {
			user = m
		} else {
			user["x"] = v
		}
		var groups []Group
		if groupLines != "" {
			for i, line := range strings.Split(groupLines, "\n") {
				ext, name, _ := strings.Cut(line, "|")
				groups = append(groups, Group{ID: string(rune('a' + i%26)), ExternalID: ext, DisplayName: name})
			}
		}
		in := TeammateInput{User: user, Groups: groups, Current: Current{Role: currentRole, Access: access}}
		checkNative(t, s, in)

		// Through the public entry points, with the oracle: the same
		// decisions as OPA, and the table never switched off.
		want, werr := opaOnly(t, s, in)
		got, err := s.Teammate(context.Background(), in)
		if (err != nil) != (werr != nil) {
			t.Fatalf("Teammate error %v, OPA's %v", err, werr)
		}
		if err == nil && !reflect.DeepEqual(Decision{Excluded: got.Excluded, Access: got.Access, Role: got.Role, Reasons: got.Reasons}, want) {
			t.Fatalf("Teammate %s, OPA %s", describeDecision(got), describeDecision(want))
		}
		if ok, why := s.Native(); !ok {
			t.Fatalf("native table switched off: %s", why)
		}
	})
}
