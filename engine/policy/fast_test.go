package policy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/schema"
)

// testPolicies are the policy sets the fast path is checked and measured
// on: the shipped one (with a 50-group table) and policies of other shapes
// under testdata/policies.
var testPolicies = []string{"shipped", "weighted", "attributes", "domains"}

func loadTestPolicy(tb testing.TB, name string) *policy.Set {
	tb.Helper()
	if name == "shipped" {
		return benchSet(tb)
	}
	s, err := policy.LoadDir(context.Background(), filepath.Join("testdata", "policies", name))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// vocabulary is what random inputs are made of: the names, domains and
// attribute values the test policies look at, and others.
var vocabulary = struct {
	groups, domains, departments, titles, costCenters, countries, userTypes []string
}{
	groups: []string{"Intercom Admins", "Intercom Support", "Intercom Viewers", "Team 07", "Team 33", "founders",
		"eng-platform-leads", "eng-infra-leads", "eng-web", "eng-", "sales-emea", "support-l2", "ops-x", "marketing",
		"Admins", "Everyone", "Engineering", "00g-it-admins", "00g-finance", "00g-all-staff", "", "ENG-WEB"},
	domains:     []string{"example.com", "Example.COM", "eu.example.com", "partner.example.net", "acquired.example.org", "contractors.example.com", "gmail.example", ""},
	departments: []string{"Support", "support", "IT", "Sales", "Engineering", ""},
	titles:      []string{"IT Director", "Head of Sales", "VP Marketing", "Engineer", "Auditor", "manager, ops", ""},
	costCenters: []string{"CC-4100", "CC-4200", "CC-7730", "CC-0001", ""},
	countries:   []string{"DE", "fr", "US", "IE", "", "nl"},
	userTypes:   []string{"Employee", "Contractor", "Intern", ""},
}

func pick(r *rand.Rand, xs []string) string { return xs[r.IntN(len(xs))] }

// randomInput is a random teammate: sometimes odd (missing or ill-typed
// attributes), usually plausible, with a large record around what
// policies read.
func randomInput(r *rand.Rand, i int) policy.TeammateInput {
	local := fmt.Sprintf("user%d", i)
	if r.IntN(20) == 0 {
		local = "breakglass"
	}
	u := map[string]any{
		"id":       fmt.Sprintf("u-%d", i),
		"userName": local + "@" + pick(r, vocabulary.domains),
		"name":     map[string]any{"givenName": "Given", "familyName": fmt.Sprint("Family", i), "formatted": fmt.Sprintf("Given Family%d", i)},
		"phoneNumbers": []any{
			map[string]any{"value": fmt.Sprintf("+1 555 %04d", i%10000), "type": "work"},
		},
		"displayName": fmt.Sprintf("Given Family%d", i),
		"locale":      "en-US",
	}
	switch r.IntN(10) {
	case 0:
		u["active"] = false
	case 1:
		u["active"] = "false"
	case 2:
	default:
		u["active"] = true
	}
	if r.IntN(4) > 0 {
		n := r.IntN(3)
		emails := make([]any, 0, n)
		for k := range n {
			emails = append(emails, map[string]any{"value": fmt.Sprintf("%s.%d@%s", local, k, pick(r, vocabulary.domains)), "primary": k == 0, "type": "work"})
		}
		if r.IntN(15) == 0 {
			emails = append(emails, "not an object", map[string]any{"value": 7})
		}
		u["emails"] = emails
	}
	if t := pick(r, vocabulary.titles); t != "" {
		u["title"] = t
	}
	if t := pick(r, vocabulary.userTypes); t != "" {
		u["userType"] = t
	}
	if r.IntN(2) == 0 {
		u["addresses"] = []any{map[string]any{"primary": r.IntN(3) > 0, "country": pick(r, vocabulary.countries), "locality": "Somewhere"}}
	}
	if r.IntN(5) > 0 {
		u[schema.EnterpriseUserURN] = map[string]any{
			"department": pick(r, vocabulary.departments), "costCenter": pick(r, vocabulary.costCenters),
			"employeeNumber": fmt.Sprint(i), "manager": map[string]any{"value": "u-1", "displayName": "Boss"},
		}
	}
	var groups []policy.Group
	for k := range r.IntN(5) {
		name := pick(r, vocabulary.groups)
		g := policy.Group{ID: fmt.Sprintf("g%d", k), DisplayName: name}
		if r.IntN(3) == 0 {
			g.ExternalID = pick(r, vocabulary.groups)
		}
		groups = append(groups, g)
	}
	cur := policy.Current{}
	if r.IntN(2) == 0 {
		cur = policy.Current{Role: "viewer", Access: true}
	}
	return policy.TeammateInput{User: u, Groups: groups, Current: cur}
}

// sameOutcome compares a fast-path result with the plain evaluation's.
func sameOutcome(t *testing.T, what string, got policy.Decision, gotErr error, want policy.Decision, wantErr error) {
	t.Helper()
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("%s: fast path error %v, plain evaluation error %v", what, gotErr, wantErr)
	}
	if gotErr != nil {
		return
	}
	if got.Excluded != want.Excluded || got.Access != want.Access || got.Role != want.Role || !slices.Equal(got.Reasons, want.Reasons) {
		t.Fatalf("%s: fast path %+v, plain evaluation %+v", what, got, want)
	}
}

// TestFastPathMatchesPlainEvaluation: for every test policy, random
// inputs decided through the fast path (one by one, in batches, from the
// memo), by the policy compiled to WebAssembly and by OPA's interpreter,
// equal a plain evaluation of data.scimd.teammate on the whole input.
func TestFastPathMatchesPlainEvaluation(t *testing.T) {
	ctx := context.Background()
	for _, name := range testPolicies {
		for _, compiled := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/compiled=%v", name, compiled), func(t *testing.T) {
				s := loadTestPolicy(t, name)
				if !policy.UseCompiled(s, compiled) {
					t.Fatalf("%s is not compiled to WebAssembly: %s", name, policy.Engine(s))
				}
				r := rand.New(rand.NewPCG(uint64(len(name)), 16))
				n := 1500
				if testing.Short() {
					n = 300
				}
				inputs := make([]policy.TeammateInput, n)
				want := make([]policy.Decision, n)
				wantErr := make([]error, n)
				for i := range inputs {
					inputs[i] = randomInput(r, i%(n/3)) // repeats: the memo answers some
					want[i], wantErr[i] = policy.PlainTeammate(ctx, s, inputs[i])
				}
				for i, in := range inputs {
					got, err := s.Teammate(ctx, in)
					sameOutcome(t, fmt.Sprintf("Teammate(input %d)", i), got, err, want[i], wantErr[i])
				}
				policy.ForgetDecisions(s)
				got, errs := s.TeammateBatch(ctx, inputs, 2)
				for i := range inputs {
					sameOutcome(t, fmt.Sprintf("TeammateBatch(input %d)", i), got[i], errs[i], want[i], wantErr[i])
				}
			})
		}
	}
}

// TestProjection: the input paths found for each policy.
func TestProjection(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		// object.get(input, ["current", "access"], …) reads one path; the
		// enterprise key is a rule folded to a constant.
		{"shipped", "input.current.access input.current.role input.group input.groups input.user.active input.user.externalId input.user.id input.user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department input.user.userName"},
		{"attributes", "input.group.externalId input.groups input.user.active input.user.addresses input.user.title input.user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.costCenter input.user.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department input.user.userType"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := policy.InputPaths(loadTestPolicy(t, tt.name)); got != tt.want {
				t.Errorf("input paths\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// FuzzFastPathMatchesOPA decides fuzzed teammates through the fast path,
// compiled to WebAssembly and interpreted, and through a plain evaluation,
// for every test policy.
func FuzzFastPathMatchesOPA(f *testing.F) {
	sets := make([]*policy.Set, len(testPolicies))
	for i, name := range testPolicies {
		sets[i] = loadTestPolicy(f, name)
	}
	f.Add(uint64(1), uint8(0), []byte(`{"userName":"breakglass@example.com"}`))
	f.Add(uint64(2), uint8(1), []byte(`{"userType":"Contractor","title":"Auditor"}`))
	f.Add(uint64(3), uint8(2), []byte(`{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"IT","costCenter":"CC-4100"},"title":"IT Director"}`))
	f.Add(uint64(4), uint8(3), []byte(`{"emails":[{"value":"x@partner.example.net"}],"active":null}`))
	f.Add(uint64(5), uint8(0), []byte(`[]`))
	f.Fuzz(func(t *testing.T, seed uint64, which uint8, extra []byte) {
		s := sets[int(which)%len(sets)]
		in := randomInput(rand.New(rand.NewPCG(seed, seed>>7)), int(seed%1000))
		if v, err := decodeJSON(extra); err == nil {
			if m, ok := v.(map[string]any); ok {
				for k, x := range m {
					in.User[k] = x
				}
			} else {
				in.User["extra"] = v
			}
		}
		want, wantErr := policy.PlainTeammate(context.Background(), s, in)
		for _, compiled := range []bool{false, true} {
			policy.UseCompiled(s, compiled)
			policy.ForgetDecisions(s)
			got, err := s.Teammate(context.Background(), in)
			sameOutcome(t, fmt.Sprintf("Teammate (compiled %v)", compiled), got, err, want, wantErr)
			ds, errs := s.TeammateBatch(context.Background(), []policy.TeammateInput{in, in}, 1)
			sameOutcome(t, fmt.Sprintf("TeammateBatch (compiled %v)", compiled), ds[1], errs[1], want, wantErr)
		}
	})
}

// BenchmarkDecision is one decision by OPA for each test policy, on
// distinct teammates with large records, the memo off: what a change to
// one teammate costs.
func BenchmarkDecision(b *testing.B) {
	ctx := context.Background()
	for _, name := range testPolicies {
		s := loadTestPolicy(b, name)
		r := rand.New(rand.NewPCG(1, 2))
		inputs := make([]policy.TeammateInput, 4096)
		for i := range inputs {
			inputs[i] = randomInput(r, i)
		}
		b.Run("policy="+name, func(b *testing.B) {
			policy.DisableMemo(s)
			b.ReportAllocs()
			cpu0 := cpuTime()
			i := 0
			for b.Loop() {
				if _, err := s.Teammate(ctx, inputs[i%len(inputs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportCPU(b, cpu0)
		})
		b.Run("policy="+name+"/plain", func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			i := 0
			for b.Loop() {
				if _, err := policy.PlainTeammate(ctx, s, inputs[i%len(inputs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportCPU(b, cpu0)
		})
	}
}

// BenchmarkFullPass decides every teammate of a 100k organisation for
// each test policy, as after a policy activation, starting each pass with
// an empty memo. One op is the whole pass: run with -benchtime 1x-3x.
func BenchmarkFullPass(b *testing.B) {
	ctx := context.Background()
	const n = 100_000
	r := rand.New(rand.NewPCG(3, 4))
	inputs := make([]policy.TeammateInput, n)
	for i := range inputs {
		inputs[i] = randomInput(r, i)
	}
	for _, name := range testPolicies {
		s := loadTestPolicy(b, name)
		b.Run(fmt.Sprintf("policy=%s/users=%d", name, n), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				policy.ForgetDecisions(s)
				_, errs := s.TeammateBatch(ctx, inputs, 0)
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			reportCPU(b, cpu0, n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/user")
		})
	}
}

// decodeJSON decodes b with numbers kept as json.Number, as SCIM
// resources are stored.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}
