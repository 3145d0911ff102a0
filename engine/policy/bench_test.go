package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/scimd/scimd/engine/policy"
)

// benchMappings is the number of group → role mappings in the generated
// benchmark policy.
const benchMappings = 50

var benchRoles = []string{"admin", "support", "viewer"}

// benchGroup is the i-th mapped group of the generated policy.
func benchGroup(i int) policy.Group {
	return policy.Group{ID: fmt.Sprintf("g%02d", i), ExternalID: fmt.Sprintf("ext-%02d", i), DisplayName: fmt.Sprintf("Team %02d", i)}
}

// benchPolicyFiles is the default policy with its group table replaced by
// benchMappings generated mappings (the three default ones included, so its
// own tests still pass).
func benchPolicyFiles(t testing.TB) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	entries, err := os.ReadDir(defaultPolicies)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if policy.IsPolicyFile(e.Name()) {
			b, err := os.ReadFile(filepath.Join(defaultPolicies, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files[e.Name()] = b
		}
	}
	var table strings.Builder
	table.WriteString("group_roles := {\n\t\"Intercom Admins\": \"admin\",\n\t\"Intercom Support\": \"support\",\n\t\"Intercom Viewers\": \"viewer\",\n")
	for i := 3; i < benchMappings; i++ {
		fmt.Fprintf(&table, "\t%q: %q,\n", benchGroup(i).DisplayName, benchRoles[i%3])
	}
	table.WriteString("}")
	src := string(files["groups.rego"])
	start := strings.Index(src, "group_roles := {")
	end := start + strings.Index(src[start:], "}") + 1
	files["groups.rego"] = []byte(src[:start] + table.String() + src[end:])
	return files
}

func benchSet(b testing.TB) *policy.Set {
	s, err := policy.LoadFiles(context.Background(), benchPolicyFiles(b))
	if err != nil {
		b.Fatal(err)
	}
	if ok, why := s.Native(); !ok {
		b.Fatalf("the benchmark policy has no native decision table: %s", why)
	}
	return s
}

// benchOPASet is benchSet with OPA alone deciding.
func benchOPASet(b testing.TB) *policy.Set {
	s := benchSet(b)
	policy.DisableNative(s)
	return s
}

// benchInput is user i, a member of three groups: two mapped, one not.
func benchInput(i int) policy.TeammateInput {
	u := user(fmt.Sprint("user", i))
	u[policy.EnterpriseUserURN] = map[string]any{"department": []string{"Sales", "Support", "Engineering"}[i%3], "employeeNumber": fmt.Sprint(i)}
	u["name"] = map[string]any{"givenName": "Given", "familyName": fmt.Sprint("Family", i)}
	return policy.TeammateInput{
		User: u,
		Groups: []policy.Group{
			benchGroup(3 + i%(benchMappings-3)),
			benchGroup(3 + (i*7)%(benchMappings-3)),
			{ID: "unmapped", DisplayName: fmt.Sprint("Project ", i%100)},
		},
		Current: policy.Current{Role: "viewer", Access: true},
	}
}

func BenchmarkTeammate(b *testing.B) {
	s := benchOPASet(b)
	ctx := context.Background()
	in := benchInput(1)
	b.Run("native-table", func(b *testing.B) {
		s := benchSet(b)
		for range 64 { // past the decisions the oracle checks all of
			if _, err := s.Teammate(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := s.Teammate(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu0)
	})
	b.Run("input=ast-builder", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := s.Teammate(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu0)
	})
	b.Run("input=InterfaceToValue", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			v, err := ast.InterfaceToValue(in.Map())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.TeammateValue(ctx, v); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu0)
	})
	b.Run("input=prebuilt", func(b *testing.B) {
		v, err := in.Value()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := s.TeammateValue(ctx, v); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu0)
	})
	b.Run("native-floor", func(b *testing.B) {
		n := newNative(benchPolicyFiles(b))
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			_ = n.decide(in)
		}
		reportCPU(b, cpu0)
	})
}

func BenchmarkGroup(b *testing.B) {
	s := benchSet(b)
	ctx := context.Background()
	g := benchGroup(17)
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, _, err := s.Group(ctx, g); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

func BenchmarkInputBuild(b *testing.B) {
	in := benchInput(1)
	b.Run("ast-builder", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := in.Value(); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu0)
	})
	b.Run("InterfaceToValue", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			if _, err := ast.InterfaceToValue(in.Map()); err != nil {
				b.Fatal(err)
			}
		}
		reportCPU(b, cpu0)
	})
}

// BenchmarkFullEvaluation is a full pass over every teammate, as after a
// policy activation. Run with -benchtime=1x or 2x: one op is the whole pass.
func BenchmarkFullEvaluation(b *testing.B) {
	s := benchOPASet(b)
	ctx := context.Background()
	for _, n := range []int{10_000, 100_000} {
		inputs := make([]policy.TeammateInput, n)
		for i := range inputs {
			inputs[i] = benchInput(i)
		}
		b.Run(fmt.Sprintf("users=%d/native-table", n), func(b *testing.B) {
			s := benchSet(b)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				_, errs := s.TeammateBatch(ctx, inputs, 0)
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			reportCPU(b, cpu0, n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/user")
			if ok, why := s.Native(); !ok {
				b.Fatalf("native table switched off: %s", why)
			}
		})
		b.Run(fmt.Sprintf("users=%d/opa-batch", n), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
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
		b.Run(fmt.Sprintf("users=%d/opa-one-eval-per-user", n), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				oneByOne(b, s, inputs)
			}
			reportCPU(b, cpu0, n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/user")
		})
		b.Run(fmt.Sprintf("users=%d/native-floor", n), func(b *testing.B) {
			nat := newNative(benchPolicyFiles(b))
			out := make([]policy.Decision, n)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				for i, in := range inputs {
					out[i] = nat.decide(in)
				}
			}
			reportCPU(b, cpu0, n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/user")
		})
	}
}

// reportCPU reports the process CPU time per op since cpu0, and per user
// when an op decides users > 1 teammates.
func reportCPU(b *testing.B, cpu0 time.Duration, users ...int) {
	c := cpuTime()
	if c == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(c-cpu0)/float64(b.N), "cpu-ns/op")
	if len(users) == 1 {
		b.ReportMetric(float64(c-cpu0)/float64(b.N*users[0]), "cpu-ns/user")
	}
}

// oneByOne evaluates every input with its own Eval, on GOMAXPROCS
// goroutines: what TeammateBatch would cost without its batch query.
func oneByOne(b *testing.B, s *policy.Set, inputs []policy.TeammateInput) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(inputs); i = int(next.Add(1)) - 1 {
				if _, err := s.Teammate(context.Background(), inputs[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// native is the benchmark policy written as plain Go: the floor that OPA
// is compared with. It makes the same decisions (TestNativeFloorAgrees).
type native struct {
	table    map[string]string
	rank     map[string]int
	excluded map[string]bool
}

func newNative(files map[string][]byte) *native {
	n := &native{table: map[string]string{}, rank: map[string]int{}, excluded: map[string]bool{"breakglass@example.com": true}}
	for i, r := range benchRoles {
		n.rank[r] = i
	}
	n.table["Intercom Admins"], n.table["Intercom Support"], n.table["Intercom Viewers"] = "admin", "support", "viewer"
	for i := 3; i < benchMappings; i++ {
		n.table[benchGroup(i).DisplayName] = benchRoles[i%3]
	}
	_ = files
	return n
}

func (n *native) isExcluded(u map[string]any) bool {
	if s, ok := u["userName"].(string); ok && n.excluded[strings.ToLower(s)] {
		return true
	}
	emails, _ := u["emails"].([]any)
	for _, e := range emails {
		if m, ok := e.(map[string]any); ok {
			if s, ok := m["value"].(string); ok && n.excluded[strings.ToLower(s)] {
				return true
			}
		}
	}
	return false
}

func (n *native) decide(in policy.TeammateInput) policy.Decision {
	u := in.User
	switch {
	case n.isExcluded(u):
		return policy.Decision{Excluded: true, Access: in.Current.Access, Role: in.Current.Role,
			Reasons: []string{"excluded from provisioning (exclusions.rego): left unchanged"}}
	case u["active"] == false:
		return policy.Decision{Reasons: []string{"deactivated in the identity provider (active: false) → no access"}}
	}
	best, reasons := "", []string(nil)
	grant := func(role, reason string) {
		switch {
		case best == "" || n.rank[role] < n.rank[best]:
			best, reasons = role, append(reasons[:0], reason)
		case role == best:
			reasons = append(reasons, reason)
		}
	}
	for _, g := range in.Groups {
		role, ok := n.table[g.ExternalID]
		if !ok {
			role, ok = n.table[g.DisplayName]
		}
		if ok {
			grant(role, `member of group "`+g.DisplayName+`" → `+role)
		}
	}
	if ext, ok := u[policy.EnterpriseUserURN].(map[string]any); ok && ext["department"] == "Support" {
		grant("support", `department is "Support" → support`)
	}
	if best == "" {
		return policy.Decision{Reasons: []string{"in no mapped group → no access"}}
	}
	slices.Sort(reasons)
	reasons = slices.Compact(reasons)
	return policy.Decision{Access: true, Role: best, Reasons: reasons}
}

func TestNativeFloorAgrees(t *testing.T) {
	s := benchOPASet(t)
	n := newNative(nil)
	for i := range 500 {
		in := benchInput(i)
		switch i % 10 {
		case 1:
			in.User["active"] = false
		case 2:
			in.User["userName"] = "BreakGlass@example.com"
		case 3:
			in.Groups = in.Groups[2:]
		}
		got, err := s.Teammate(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got.Revision, got.DecisionID = "", ""
		if want := n.decide(in); !reflect.DeepEqual(got, want) {
			t.Fatalf("input %d: OPA %+v, native %+v", i, got, want)
		}
	}
}

// BenchmarkGate is the full gate on the default policy: read, parse,
// compile, run its tests, prepare, check the contract.
func BenchmarkGate(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := policy.LoadDir(ctx, defaultPolicies); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}
