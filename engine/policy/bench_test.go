package policy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/scimd/scimd/engine/policy"
	"github.com/scimd/scimd/scim/schema"
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
	return s
}

// benchInput is user i, a member of three groups: two mapped, one not.
func benchInput(i int) policy.TeammateInput {
	u := user(fmt.Sprint("user", i))
	u[schema.EnterpriseUserURN] = map[string]any{"department": []string{"Sales", "Support", "Engineering"}[i%3], "employeeNumber": fmt.Sprint(i)}
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
