package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// FuzzReadWellFormed: whatever the compiled query's answer, the direct
// reader either declines it or reads exactly what the full decoding and
// the contract check read.
func FuzzReadWellFormed(f *testing.F) {
	for _, seed := range []string{
		`[{"setReasons":0,"x":{"reasons":["member of group \"Intercom Admins\" → admin"],"role":"admin","access":true,"excluded":false}}]`,
		`[{"x":{"excluded":true,"access":false,"role":null,"reasons":[]}, "setReasons":0}]`,
		`[{"x":{"excluded":true,"access":false,"role":"","reasons":["a\u0000b"]},"setReasons":0}]`,
		`[{"x":{"Excluded":true,"access":false,"role":null,"reasons":[]},"setReasons":0}]`,
		`[{"x":{"excluded":true,"access":false,"role":null,"reasons":[null]},"setReasons":0}]`,
		`[{"x":{"excluded":true,"access":false,"role":null,"reasons":[],"extra":1},"setReasons":0}]`,
		`[{"x":"no","setReasons":0}]`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	s := &Set{rank: map[string]int{"admin": 0}, roles: []string{"admin"}}
	f.Fuzz(func(t *testing.T, out []byte) {
		fast, ok := readWellFormed(out)
		if !ok {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		var rs []struct {
			X          any `json:"x"`
			SetReasons json.Number
		}
		// Keys are exact in the direct reader; encoding/json folds case,
		// so only answers whose keys are exact reach this comparison.
		if err := dec.Decode(&rs); err != nil || len(rs) != 1 {
			t.Fatalf("direct reader accepted %q, which does not decode: %v", out, err)
		}
		v, err := ast.InterfaceToValue(rs[0].X)
		if err != nil {
			t.Fatalf("direct reader accepted %q: %v", out, err)
		}
		var want Decision
		// The role is checked against the roles after either reader (checkRole).
		var unknownRole *UnknownRoleError
		if err := s.readDecision(ast.NewTerm(v), &want); err != nil && !errors.As(err, &unknownRole) {
			t.Fatalf("direct reader accepted %q, which the contract refuses: %v", out, err)
		}
		got := fast.fields
		if got.excluded != want.Excluded || got.access != want.Access || got.role != want.Role || !slices.Equal(got.reasons, want.Reasons) {
			t.Fatalf("%q: direct %+v, full %+v", out, *got, want)
		}
	})
}

// FuzzAddFuel: the loop-bounding rewrite refuses what it does not
// understand and never panics.
func FuzzAddFuel(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add(append([]byte("\x00asm\x01\x00\x00\x00"), wasmSection(10, wasmVec(append(uleb(7), 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b)))...))
	f.Add(wasmEnvModule(1, 2))
	f.Fuzz(func(t *testing.T, mod []byte) {
		_, _ = addFuel(mod)
	})
}

// FuzzReadValueText: a built-in's argument read directly as JSON is the
// value OPA's parser reads from the same text.
func FuzzReadValueText(f *testing.F) {
	for _, seed := range []string{`["member of group %q → %s", ["Admins", "admin"]]`, `{"a": [1, 2.5e3, -0, true, null]}`,
		`"a\"b\u00e9"`, `{1, 2}`, `set()`, `{"a": 1, "a": 2}`, `01`, `[1,]`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		sc := resultScanner{b: text}
		v, ok := sc.value(0)
		if sc.space(); !ok || len(sc.b) != 0 {
			return
		}
		want, err := ast.ParseTerm(string(text))
		if err != nil {
			t.Fatalf("read %q directly as %v; OPA's parser refuses it: %v", text, v, err)
		}
		if v.Compare(want.Value) != 0 {
			t.Fatalf("%q: directly %v, parsed %v", text, v, want.Value)
		}
	})
}

// TestWasmCompilerRenamesPatternBuiltins: no call to a goBuiltins
// built-in is left for OPA's WebAssembly runtime, wherever it is.
func TestWasmCompilerRenamesPatternBuiltins(t *testing.T) {
	m := ast.MustParseModuleWithOpts(`package scimd
a if regex.match("x", input.a)
b := [x | some x in input.b; glob.match("a*", [], x)]
c := count(regex.find_all_string_submatch_n("a", input.c, -1))
d if { f(regex.is_valid(input.d)) }
f(x) := x
`, ast.ParserOptions{RegoVersion: ast.RegoV1})
	c, err := wasmCompiler(map[string]*ast.Module{"m.rego": m})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range goBuiltins() {
		ast.WalkTerms(c.Modules["m.rego"], func(x *ast.Term) bool {
			if ref, ok := x.Value.(ast.Ref); ok && ref.String() == b.Name {
				t.Errorf("a call to %s is left: %v", b.Name, x.Location)
			}
			return false
		})
	}
	if !strings.Contains(m.String(), "regex.match") {
		t.Error("the production module itself was changed")
	}
}

// FuzzProjectedJSON: the input written straight as JSON is the projected
// input's value, for the projections of the test policies, whenever the
// direct writer accepts the teammate.
func FuzzProjectedJSON(f *testing.F) {
	f.Add([]byte(`{"userName":"a@example.com","active":true,"title":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"IT"}}`), "Admins", "admin")
	f.Add([]byte(`{"emails":[{"value":"x@y","primary":true}],"n":1.5e300,"z":null,"a":[1,[2,{"b":{}}]]}`), "", "")
	projections := []*projection{wholeProjection}
	for _, dir := range []string{"../../policies", "testdata/policies/weighted", "testdata/policies/attributes", "testdata/policies/domains"} {
		s, err := LoadDir(context.Background(), dir)
		if err != nil {
			f.Fatal(err)
		}
		projections = append(projections, s.fast.proj)
	}
	f.Fuzz(func(t *testing.T, user []byte, group, role string) {
		dec := json.NewDecoder(bytes.NewReader(user))
		dec.UseNumber()
		var u map[string]any
		if dec.Decode(&u) != nil {
			return
		}
		in := TeammateInput{User: u, Groups: []Group{{ID: "g", DisplayName: group}}, Current: Current{Role: role, Access: role != ""}}
		for _, p := range projections {
			b, err := in.appendProjectedJSON(nil, p)
			if err != nil {
				continue
			}
			want, err := in.projectedValue(p)
			if err != nil {
				t.Fatalf("written as JSON, but projectedValue fails: %v", err)
			}
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			var x any
			if err := d.Decode(&x); err != nil {
				t.Fatalf("%s is not JSON: %v", b, err)
			}
			got, err := ast.InterfaceToValue(x)
			if err != nil || got.Compare(want) != 0 {
				t.Fatalf("projection %s:\n json %s\n want %v", p, b, want)
			}
		}
	})
}

// TestWasmValueLayout: the instances of a compiled policy read and write
// strings and booleans directly (the layout check passes), and a string
// written so reads back the same.
func TestWasmValueLayout(t *testing.T) {
	ctx := context.Background()
	s, err := LoadDir(ctx, "../../policies")
	if err != nil {
		t.Fatal(err)
	}
	if s.fast.compiled == nil {
		t.Fatalf("not compiled: %s", s.fast.engine)
	}
	vm, err := s.fast.compiled.newVM(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.close()
	if !vm.direct {
		t.Fatal("the value layout check failed: built-in calls go through text")
	}
	for _, str := range []string{"", "a", "member of group \"x\" → admin", strings.Repeat("z", 5000)} {
		addr, ok := vm.newValue(ctx, ast.String(str))
		if !ok {
			t.Fatalf("newValue(%q) refused", str)
		}
		if got, ok := vm.readString(addr); !ok || got != str {
			t.Fatalf("wrote %q, read %q (%v)", str, got, ok)
		}
		res, err := vm.call(ctx, vm.valueDump, 1, uint64(addr), 0)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := readValueText(vm.cString(uint32(res))); err != nil || v.Value.Compare(ast.String(str)) != 0 {
			t.Fatalf("OPA's runtime reads %q as %v (%v)", str, v, err)
		}
	}
}

// TestEngineOutlivesItsSet: an engine still in use after its revision was
// dropped (a reload while a pass decides) keeps its compiled code: it is
// released only once the engine itself is garbage.
func TestEngineOutlivesItsSet(t *testing.T) {
	ctx := context.Background()
	s, err := LoadDir(ctx, "../../policies")
	if err != nil {
		t.Fatal(err)
	}
	engine, proj := s.fast.compiled, s.fast.proj
	if engine == nil {
		t.Fatal("not compiled")
	}
	s = nil
	for range 3 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond) // cleanups run on their own goroutine
	}
	in := TeammateInput{User: map[string]any{"userName": "a@example.com", "active": true}, Groups: []Group{{ID: "g", DisplayName: "Intercom Admins"}}}
	b, err := in.appendProjectedJSON(nil, proj)
	if err != nil {
		t.Fatal(err)
	}
	// Every idle instance busy: the next evaluation starts a new one.
	for range cap(engine.idle) + 1 {
		select {
		case vm := <-engine.idle:
			defer engine.put(vm)
		default:
		}
	}
	if r, err := engine.eval(ctx, b); err != nil || r.fields == nil || r.fields.role != "admin" {
		t.Fatalf("evaluation after the set was dropped: %+v, %v", r, err)
	}
}
