package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

const shippedPolicies = "../../policies"

// shippedFiles returns the default policy's files (tests included).
func shippedFiles(t testing.TB) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(shippedPolicies)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !IsPolicyFile(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(shippedPolicies, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// edit returns files with old replaced by new in file name (which must
// contain old), or with new appended when old is "".
func edit(t testing.TB, files map[string][]byte, name, old, new string) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte, len(files))
	for k, v := range files {
		out[k] = v
	}
	src := string(out[name])
	if old == "" {
		out[name] = []byte(src + "\n" + new + "\n")
		return out
	}
	if !strings.Contains(src, old) {
		t.Fatalf("%s does not contain %q", name, old)
	}
	out[name] = []byte(strings.Replace(src, old, new, 1))
	return out
}

// buildNoTests builds files through the gate without running the policy's
// own tests (variants change what those tests check).
func buildNoTests(t testing.TB, files map[string][]byte) *Set {
	t.Helper()
	src, err := NewSource(files)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(context.Background(), src, BuildOptions{SkipTests: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// richVariant is the default policy with every kind of data the native
// table accepts exercised: keys by externalId, a computed key granting a
// role outside roles, mixed-case exclusions, a default role for teammates in
// no group, and attribute rules of several forms (two conditions, constant
// on the left, a boolean, a grant to everyone of an unknown role, a reason
// equal to a group's).
func richVariant(t testing.TB) map[string][]byte {
	f := shippedFiles(t)
	f = edit(t, f, "groups.rego", `"Intercom Viewers": "viewer",`, `"Intercom Viewers": "viewer",
	"00gSUPPORT": "support",
	"Ops": "admin",
	concat("-", ["Legacy", "Owners"]): "owner",`)
	f = edit(t, f, "exclusions.rego", `"breakglass@example.com",`, `"breakglass@example.com",
	"Ops-Root@Example.COM",
	"İstanbul@example.com",`)
	f = edit(t, f, "roles.rego", `# role_without_group := "viewer"`, `role_without_group := "viewer"`)
	f = edit(t, f, "attributes.rego", "", `
attribute_grants contains {"role": "admin", "reason": "manager in Support → admin"} if {
	input.user.title == "Manager"
	input.user[enterprise].department == "Support"
}

attribute_grants contains {"role": "viewer", "reason": "in Engineering → viewer"} if {
	"Engineering" == input.user[enterprise].division
}

attribute_grants contains {"role": "viewer", "reason": "member of group \"Intercom Viewers\" → viewer"} if {
	input.user.nickName == "viewer-twin"
}

attribute_grants contains {"role": "support", "reason": "flagged → support"} if {
	input.user.flags.support == true
}

attribute_grants contains {"role": "owner", "reason": "everyone → owner"}
`)
	return f
}

// variants are policy sets that must get a native table.
func variants(t testing.TB) map[string]*Set {
	return map[string]*Set{
		"default": buildNoTests(t, shippedFiles(t)),
		"rich":    buildNoTests(t, richVariant(t)),
	}
}

func TestReferenceLogicMatchesShippedPolicy(t *testing.T) {
	ref, err := referenceRules()
	if err != nil {
		t.Fatal(err)
	}
	shipped := map[string][]*ast.Rule{}
	for name, b := range shippedFiles(t) {
		if IsTestFile(name) {
			continue
		}
		m, err := ast.ParseModuleWithOpts(name, string(b), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			t.Fatal(err)
		}
		for n, rs := range rulesByName(m.Rules) {
			shipped[n] = append(shipped[n], rs...)
		}
	}
	for _, name := range nativeLogicNames {
		if len(ref[name]) == 0 {
			t.Errorf("the reference logic has no rule %s", name)
		}
		if !sameRules(shipped[name], ref[name]) {
			t.Errorf("rule %s of policies/ differs from referenceLogic: update native_logic.go (and native.go if the logic changed)", name)
		}
	}
	for name := range ref {
		if !contains(nativeLogicNames, name) {
			t.Errorf("referenceLogic defines %s, which is not in nativeLogicNames", name)
		}
	}
	s, err := LoadDir(context.Background(), shippedPolicies)
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := s.Native(); !ok {
		t.Fatalf("the default policy has no native table: %s", why)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestNativeTableOfRichVariant(t *testing.T) {
	s := buildNoTests(t, richVariant(t))
	ok, why := s.Native()
	if !ok {
		t.Fatalf("no native table: %s", why)
	}
	tab := s.nativeTable()
	if got := tab.groupRoles["Legacy-Owners"]; got != "owner" {
		t.Errorf("group_roles[Legacy-Owners] = %q", got)
	}
	if _, ok := tab.excluded["ops-root@example.com"]; !ok {
		t.Errorf("excluded_lower = %v", tab.excluded)
	}
	if tab.noGroupNull || tab.noGroupRole != "viewer" {
		t.Errorf("role_without_group: null=%v %q", tab.noGroupNull, tab.noGroupRole)
	}
	if len(tab.attrs) != 6 {
		t.Errorf("%d attribute rules, want 6", len(tab.attrs))
	}
}

// Pools the generator draws from. Values of odd types make the native
// table step aside; the differential test checks that it does, or agrees.
var (
	genNames = []any{"alice@example.com", "breakglass@example.com", "BreakGlass@Example.com", "BREAKGLASS@EXAMPLE.COM",
		"ops-root@example.com", "OPS-ROOT@EXAMPLE.COM", "i̇stanbul@example.com", "İSTANBUL@example.com", "bob", "",
		"ß@example.com", "\xff\xfe@example.com"}
	genOddNames = []any{42.0, nil, true, []any{"breakglass@example.com"}}
	genEmails   = []any{"carol@example.com", "breakglass@example.com", "Breakglass@example.COM", "ops-root@example.com",
		"", "carol@example.com", "dave@example.com", "erin@example.com"}
	genOddEmails   = []any{7.0, nil, map[string]any{"v": 1}}
	genDepartments = []any{"Support", "support", "Support ", "Engineering", "Sales", "", nil, 3.0, true,
		[]any{"Support"}, map[string]any{"name": "Support"}}
	genGroups = []Group{
		{ID: "g1", DisplayName: "Intercom Admins"},
		{ID: "g2", DisplayName: "Intercom Support"},
		{ID: "g3", DisplayName: "Intercom Viewers"},
		{ID: "g4", ExternalID: "Intercom Admins", DisplayName: "renamed admins"},
		{ID: "g5", ExternalID: "00gSUPPORT", DisplayName: "Support (by id)"},
		{ID: "g6", ExternalID: "00gUNKNOWN", DisplayName: "Intercom Viewers"},
		{ID: "g7", DisplayName: "Sales"},
		{ID: "g8", DisplayName: "intercom admins"},
		{ID: "g9", DisplayName: "Ops"},
		{ID: "g10", DisplayName: "Legacy-Owners"},
		{ID: "g11", ExternalID: "Legacy-Owners", DisplayName: "Intercom Admins"},
		{ID: "g12", ExternalID: "Intercom Viewers", DisplayName: "Intercom Admins"},
		{ID: "g13", DisplayName: `Quote "me" \ ☃`},
		{ID: "g14", DisplayName: "\xffbad utf-8"},
	}
	genRoles = []string{"", "admin", "support", "viewer", "owner"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// genInput is a random teammate input: mostly ordinary, sometimes odd.
func genInput(r *rand.Rand) TeammateInput {
	u := map[string]any{"id": fmt.Sprint("u", r.IntN(1000))}
	switch r.IntN(20) {
	case 0: // no userName
	case 1:
		u["userName"] = pick(r, genOddNames)
	default:
		u["userName"] = pick(r, genNames)
	}
	switch r.IntN(16) {
	case 0: // no emails
	case 1:
		u["emails"] = pick(r, []any{"breakglass@example.com", nil, []any{}, map[string]any{"value": "x"}})
	case 2:
		u["emails"] = []any{pick(r, append(genOddEmails, genEmails...)), map[string]any{"value": pick(r, genOddEmails)}}
	default:
		var emails []any
		for range r.IntN(3) + 1 {
			e := map[string]any{"type": "work"}
			if r.IntN(8) > 0 {
				e["value"] = pick(r, genEmails)
			}
			emails = append(emails, e)
		}
		u["emails"] = emails
	}
	switch r.IntN(6) {
	case 0:
	case 1:
		u["active"] = pick(r, []any{"false", nil, 0.0, "true"})
	case 2, 3:
		u["active"] = false
	default:
		u["active"] = true
	}
	if r.IntN(3) > 0 {
		ext := map[string]any{}
		if r.IntN(4) > 0 {
			ext["department"] = pick(r, genDepartments)
		}
		if r.IntN(3) == 0 {
			ext["division"] = pick(r, []any{"Engineering", "engineering", nil})
		}
		u[EnterpriseUserURN] = ext
		if r.IntN(20) == 0 {
			u[EnterpriseUserURN] = pick(r, []any{"Support", nil, []any{map[string]any{"department": "Support"}}})
		}
	}
	if r.IntN(4) == 0 {
		u["title"] = pick(r, []any{"Manager", "manager", 1.0})
	}
	if r.IntN(6) == 0 {
		u["nickName"] = "viewer-twin"
	}
	if r.IntN(6) == 0 {
		u["flags"] = pick(r, []any{map[string]any{"support": true}, map[string]any{"support": "true"}, true, nil})
	}
	switch r.IntN(40) {
	case 0:
		u["score"] = math.NaN()
	case 1:
		u["n"] = json.Number("1e999")
	case 2:
		u["odd"] = struct{ A string }{"x"}
	case 3:
		u["n"] = json.Number("12")
	case 4:
		u["tags"] = []string{"a"}
	case 5:
		u["deep"] = []map[string]any{{"a": 1}}
	}
	var groups []Group
	for range r.IntN(5) {
		groups = append(groups, pick(r, genGroups))
	}
	return TeammateInput{User: u, Groups: groups, Current: Current{Role: pick(r, genRoles), Access: r.IntN(2) == 0}}
}

// opaOnly decides in with OPA alone.
func opaOnly(t testing.TB, s *Set, in TeammateInput) (Decision, error) {
	t.Helper()
	v, err := in.Value()
	if err != nil {
		return Decision{}, err
	}
	return s.teammateValue(context.Background(), v, Decision{})
}

// checkNative compares the native table with OPA on in, through both the
// Go and the AST form of the input. It returns whether the table decided.
func checkNative(t testing.TB, s *Set, in TeammateInput) bool {
	t.Helper()
	tab := s.nativeTable()
	want, werr := opaOnly(t, s, in)
	got, ok := tab.decideInput(in)
	if ok {
		if werr != nil {
			t.Fatalf("native decided %s, OPA failed: %v\ninput: %#v", describeDecision(got), werr, in)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("native %s, OPA %s\ninput: %#v", describeDecision(got), describeDecision(want), in)
		}
	}
	if v, err := in.Value(); err == nil {
		gotV, okV := tab.decideValue(v)
		if ok && !okV {
			t.Fatalf("decideInput decided, decideValue did not\ninput: %#v", in)
		}
		if okV && werr != nil {
			t.Fatalf("native (AST input) decided %s, OPA failed: %v\ninput: %v", describeDecision(gotV), werr, v)
		}
		if okV && !reflect.DeepEqual(gotV, want) {
			t.Fatalf("native (AST input) %s, OPA %s\ninput: %v", describeDecision(gotV), describeDecision(want), v)
		}
	}
	return ok
}

func TestNativeMatchesOPA(t *testing.T) {
	for name, s := range variants(t) {
		t.Run(name, func(t *testing.T) {
			if ok, why := s.Native(); !ok {
				t.Fatalf("no native table: %s", why)
			}
			r := rand.New(rand.NewPCG(1, uint64(len(name))))
			n := 3000
			if testing.Short() {
				n = 500
			}
			decided := 0
			for range n {
				if checkNative(t, s, genInput(r)) {
					decided++
				}
			}
			// Most generated inputs are ordinary: the table must take them.
			if decided < n/2 {
				t.Errorf("the native table decided %d of %d inputs", decided, n)
			}
		})
	}
}

// TestNativeCases pins the cases the brief of the table names, on the
// rich variant, with the decision OPA makes.
func TestNativeCases(t *testing.T) {
	s := buildNoTests(t, richVariant(t))
	admins, support, viewers := genGroups[0], genGroups[1], genGroups[2]
	user := func(kv ...any) map[string]any {
		u := map[string]any{"id": "u1", "userName": "alice@example.com", "active": true,
			"emails": []any{map[string]any{"value": "alice@example.com", "primary": true}}}
		for i := 0; i+1 < len(kv); i += 2 {
			u[kv[i].(string)] = kv[i+1]
		}
		return u
	}
	for _, tc := range []struct {
		name   string
		in     TeammateInput
		role   string
		access bool
		excl   bool
		reason string // first reason
		native bool
	}{
		{"highest role wins", TeammateInput{User: user(), Groups: []Group{viewers, admins, support}}, "admin", true, false, `member of group "Intercom Admins" → admin`, true},
		{"duplicate groups collapse", TeammateInput{User: user(), Groups: []Group{viewers, viewers}}, "viewer", true, false, `member of group "Intercom Viewers" → viewer`, true},
		{"by externalId first", TeammateInput{User: user(), Groups: []Group{genGroups[11]}}, "viewer", true, false, `member of group "Intercom Admins" → viewer`, true},
		{"by externalId, renamed", TeammateInput{User: user(), Groups: []Group{genGroups[3]}}, "admin", true, false, `member of group "renamed admins" → admin`, true},
		{"unknown role ignored", TeammateInput{User: user(), Groups: []Group{genGroups[9]}}, "viewer", true, false, "in no mapped group → default role viewer", true},
		{"case of a group name matters", TeammateInput{User: user(), Groups: []Group{genGroups[7]}}, "viewer", true, false, "in no mapped group → default role viewer", true},
		{"excluded by email, any case", TeammateInput{User: user("emails", []any{map[string]any{"value": "OPS-root@example.com"}}), Groups: []Group{admins}, Current: Current{Role: "support", Access: true}}, "support", true, true, reasonExcluded, true},
		{"excluded by userName", TeammateInput{User: user("userName", "BREAKGLASS@example.com"), Current: Current{}}, "", false, true, reasonExcluded, true},
		{"deactivated", TeammateInput{User: user("active", false), Groups: []Group{admins}}, "", false, false, reasonDeactivated, true},
		{"department rule", TeammateInput{User: user(EnterpriseUserURN, map[string]any{"department": "Support"}), Groups: []Group{viewers}}, "support", true, false, `department is "Support" → support`, true},
		{"two conditions", TeammateInput{User: user("title", "Manager", EnterpriseUserURN, map[string]any{"department": "Support"})}, "admin", true, false, "manager in Support → admin", true},
		{"attribute reason equal to a group's", TeammateInput{User: user("nickName", "viewer-twin"), Groups: []Group{viewers}}, "viewer", true, false, `member of group "Intercom Viewers" → viewer`, true},
		{"userName not a string", TeammateInput{User: user("userName", 1.0), Groups: []Group{admins}}, "admin", true, false, `member of group "Intercom Admins" → admin`, false},
		{"NaN attribute", TeammateInput{User: user("x", math.Inf(1)), Groups: []Group{admins}}, "", false, false, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := s.nativeTable().decideInput(tc.in)
			if ok != tc.native {
				t.Errorf("native ok = %v, want %v", ok, tc.native)
			}
			checkNative(t, s, tc.in)
			d, err := s.Teammate(context.Background(), tc.in)
			if tc.reason == "" {
				if err == nil {
					t.Fatalf("decision %s, want an error", describeDecision(d))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Role != tc.role || d.Access != tc.access || d.Excluded != tc.excl || d.Reasons[0] != tc.reason {
				t.Errorf("got %s", describeDecision(d))
			}
			if d.Revision != s.Revision() || d.DecisionID == "" {
				t.Errorf("decision not tagged: %+v", d)
			}
		})
	}
	// Duplicate grants collapse, and reasons are sorted.
	d, err := s.Teammate(context.Background(), TeammateInput{User: user("nickName", "viewer-twin"), Groups: []Group{viewers, genGroups[5], viewers}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`member of group "Intercom Viewers" → viewer`}; !reflect.DeepEqual(d.Reasons, want) {
		t.Errorf("reasons %q, want %q", d.Reasons, want)
	}
}

func TestNoNativeTable(t *testing.T) {
	base := shippedFiles(t)
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		why   string
	}{
		{"changed logic: order of cases", edit(t, base, "teammate.rego", `teammate := excluded_decision if {
	excluded
} else := deactivated_decision if {
	deactivated
}`, `teammate := deactivated_decision if {
	deactivated
} else := excluded_decision if {
	excluded
}`), "rule teammate differs"},
		{"changed logic: case-sensitive exclusion", edit(t, base, "exclusions.rego", `	lower(input.user.userName) in excluded_lower`, `	input.user.userName in excluded_lower`), "rule excluded differs"},
		{"changed logic: extra default", edit(t, base, "exclusions.rego", "", "default excluded := false"), "rule excluded differs"},
		{"changed logic: reason text", edit(t, base, "teammate.rego", `"reasons": ["in no mapped group → no access"]`, `"reasons": ["no group"]`), "rule no_group_decision differs"},
		{"input-dependent group_roles", edit(t, base, "groups.rego", `group_roles := {`, `group_roles := {input.user.userName: "admin"} if input.user.vip

group_roles := {`), "group_roles depends on the input"},
		{"group_roles through an input-dependent helper", edit(t, edit(t, base, "groups.rego", `"Intercom Viewers": "viewer",`, `"Intercom Viewers": "viewer",
	"x": helper,`), "groups.rego", "", `helper := "viewer" if input.user.vip
else := "viewer"`), "group_roles depends on the input"},
		{"group_roles with `with`", edit(t, edit(t, base, "groups.rego", `"Intercom Viewers": "viewer",`, `"Intercom Viewers": "viewer",
	"y": helper,`), "groups.rego", "", `helper := x if x := inner with input as {}
inner := "viewer"`), "with"},
		{"unrecognised attribute rule: !=", edit(t, base, "attributes.rego", `input.user[enterprise].department == "Support"`, `input.user[enterprise].department != "Sales"`), "attribute_grants rule is not of the form"},
		{"unrecognised attribute rule: built-in", edit(t, base, "attributes.rego", `input.user[enterprise].department == "Support"`, `startswith(input.user[enterprise].department, "Supp")`), "attribute_grants rule is not of the form"},
		{"unrecognised attribute rule: computed role", edit(t, base, "attributes.rego", "", `attribute_grants contains {"role": r, "reason": "by title"} if {
	r := input.user.title
}`), "attribute_grants rule is not of the form"},
		{"unrecognised attribute rule: groups", edit(t, base, "attributes.rego", "", `attribute_grants contains {"role": "viewer", "reason": "first group"} if {
	input.groups[0].displayName == "Sales"
}`), "attribute_grants rule is not of the form"},
		{"attribute path through an input-dependent rule", edit(t, base, "attributes.rego", `enterprise := "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, `enterprise := "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User" if input.user
else := "x"`), "enterprise depends on the input"},
		{"attribute path through a non-string", edit(t, base, "attributes.rego", `enterprise := "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`, `enterprise := 7`), "enterprise is not a string"},
		{"data under data.scimd", func() map[string][]byte {
			f := edit(t, base, "roles.rego", "", "")
			f["data.json"] = []byte(`{"scimd": {"extra": 1}}`)
			return f
		}(), "data file"},
		{"import", edit(t, base, "groups.rego", "package scimd\n", "package scimd\n\nimport input.user as u\n\nvip if u.vip\n"), "import"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildNoTests(t, tc.files)
			ok, why := s.Native()
			if ok {
				t.Fatal("got a native table")
			}
			if !strings.Contains(why, tc.why) {
				t.Errorf("reason %q, want it to contain %q", why, tc.why)
			}
			// OPA decides, as before.
			d, err := s.Teammate(context.Background(), TeammateInput{User: map[string]any{"userName": "a"}, Groups: []Group{genGroups[0]}})
			if err != nil || len(d.Reasons) == 0 {
				t.Errorf("decision %+v, %v", d, err)
			}
		})
	}
}

// tampered returns a copy of s's native table that maps the admins group
// to the wrong role, installed in s.
func tamper(t *testing.T, s *Set) {
	t.Helper()
	tab := *s.nativeTable()
	tab.groupRoles = map[string]string{}
	for k, v := range s.nativeTable().groupRoles {
		tab.groupRoles[k] = v
	}
	tab.groupRoles["Intercom Admins"] = "viewer"
	s.native.Store(&nativeState{table: &tab})
}

func TestOracleCatchesDisagreementInBatch(t *testing.T) {
	var logs bytes.Buffer
	src, err := NewSource(shippedFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(context.Background(), src, BuildOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tamper(t, s)
	r := rand.New(rand.NewPCG(7, 7))
	inputs := make([]TeammateInput, 500)
	for i := range inputs {
		inputs[i] = genInput(r)
		inputs[i].Groups = append(inputs[i].Groups, genGroups[0]) // admins: the tampered row
	}
	decisions, errs := s.TeammateBatch(context.Background(), inputs, 2)
	for i, in := range inputs {
		want, werr := opaOnly(t, s, in)
		if (werr != nil) != (errs[i] != nil) {
			t.Fatalf("input %d: error %v, OPA's %v", i, errs[i], werr)
		}
		if werr != nil {
			continue
		}
		got := decisions[i]
		if !sameDecision(got, want) {
			t.Fatalf("input %d: decision %s, OPA %s", i, describeDecision(got), describeDecision(want))
		}
		if got.Revision != s.Revision() || got.DecisionID == "" {
			t.Fatalf("input %d: not tagged: %+v", i, got)
		}
	}
	ok, why := s.Native()
	if ok || !strings.Contains(why, "disagreed with OPA") {
		t.Errorf("Native() = %v, %q", ok, why)
	}
	if !strings.Contains(logs.String(), "native decisions disabled") {
		t.Errorf("nothing logged: %q", logs.String())
	}
}

func TestOracleCatchesDisagreementInTeammate(t *testing.T) {
	s := buildNoTests(t, shippedFiles(t))
	tamper(t, s)
	in := TeammateInput{User: map[string]any{"id": "u1", "userName": "a@example.com"}, Groups: []Group{genGroups[0]}}
	d, err := s.Teammate(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Role != "admin" {
		t.Errorf("role %q, want OPA's admin", d.Role)
	}
	if ok, _ := s.Native(); ok {
		t.Error("the native table is still on")
	}

	s = buildNoTests(t, shippedFiles(t))
	tamper(t, s)
	v, err := in.Value()
	if err != nil {
		t.Fatal(err)
	}
	if d, err := s.TeammateValue(context.Background(), v); err != nil || d.Role != "admin" {
		t.Errorf("TeammateValue: %s, %v; want OPA's admin", describeDecision(d), err)
	}
	if ok, _ := s.Native(); ok {
		t.Error("the native table is still on after TeammateValue")
	}
}

// TestOracleSamplesAfterTheFirst checks that after the first decisions
// the oracle still samples: a table wrong only for later inputs is caught
// in a large batch.
func TestOracleSamplesAfterTheFirst(t *testing.T) {
	s := buildNoTests(t, shippedFiles(t))
	ordinary := TeammateInput{User: map[string]any{"userName": "a"}, Groups: []Group{genGroups[1]}}
	batch := make([]TeammateInput, oracleFirst)
	for i := range batch {
		batch[i] = ordinary
	}
	s.TeammateBatch(context.Background(), batch, 1)
	if ok, why := s.Native(); !ok {
		t.Fatalf("disabled by agreeing decisions: %s", why)
	}
	tamper(t, s)
	big := make([]TeammateInput, 20*oracleRate)
	for i := range big {
		big[i] = TeammateInput{User: map[string]any{"userName": "a"}, Groups: []Group{genGroups[0]}}
	}
	decisions, _ := s.TeammateBatch(context.Background(), big, 2)
	if ok, _ := s.Native(); ok {
		t.Fatal("a table wrong for every input survived 20,000 decisions")
	}
	for i, d := range decisions {
		if d.Role != "admin" {
			t.Fatalf("decision %d: %s, want OPA's admin", i, describeDecision(d))
		}
	}
}

func TestNativeBatchKeepsOrderAndErrors(t *testing.T) {
	s := buildNoTests(t, richVariant(t))
	r := rand.New(rand.NewPCG(3, 4))
	inputs := make([]TeammateInput, 2000)
	for i := range inputs {
		inputs[i] = genInput(r)
	}
	decisions, errs := s.TeammateBatch(context.Background(), inputs, 2)
	for i, in := range inputs {
		want, werr := opaOnly(t, s, in)
		switch {
		case (werr != nil) != (errs[i] != nil):
			t.Fatalf("input %d: error %v, OPA's %v", i, errs[i], werr)
		case werr == nil && !sameDecision(decisions[i], want):
			t.Fatalf("input %d: %s, OPA %s", i, describeDecision(decisions[i]), describeDecision(want))
		}
	}
	if ok, why := s.Native(); !ok {
		t.Fatalf("native table switched off: %s", why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, errs = s.TeammateBatch(ctx, inputs, 2)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("input %d: no error after ctx ended", i)
		}
	}
}
