package replay

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleSequences loads every examples/idp/*/sequence.json: each must
// parse without unknown fields, use only {{variables}} captured by an earlier
// step, state the active flag of every expected user, and include a group
// named like an application role so the files double as demo data.
func TestExampleSequences(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "*", "sequence.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"okta": false, "entra": false, "onelogin": false, "ping": false, "jumpcloud": false}
	for _, f := range files {
		dir := filepath.Base(filepath.Dir(f))
		t.Run(dir, func(t *testing.T) {
			s, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := want[dir]; ok {
				want[dir] = true
			}
			for _, u := range s.Expect.Users {
				if u.Active == nil {
					t.Errorf("expected user %q has no active flag", u.UserName)
				}
			}
			roleGroup := false
			for _, g := range s.Expect.Groups {
				if strings.HasPrefix(g.DisplayName, "Intercom ") {
					roleGroup = true
				}
			}
			if !roleGroup {
				t.Error(`no expected group is named like a role group ("Intercom …")`)
			}
			for _, src := range s.Sources {
				if strings.TrimSpace(src) == "" {
					t.Error("empty source")
				}
			}
		})
	}
	for dir, found := range want {
		if !found {
			t.Errorf("examples/idp/%s/sequence.json is missing", dir)
		}
	}
}
