package policy

import (
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A projection is the part of the input a compiled policy can read: the
// tree of constant keys below `input` that its references name. A node
// marked whole keeps everything below it. Projecting an input to it gives
// every decision the same value as the whole input (any use of a subtree
// other than a lookup by constant key keeps that subtree whole), while
// large user records are not converted for nothing.
type projection struct {
	whole    bool
	children map[string]*projection
}

// wholeProjection keeps the whole input.
var wholeProjection = &projection{whole: true}

// keyPath adds path below p, and marks its last node whole when whole.
func (p *projection) add(path []string) {
	n := p
	for _, k := range path {
		if n.whole {
			return
		}
		if n.children == nil {
			n.children = map[string]*projection{}
		}
		c := n.children[k]
		if c == nil {
			c = &projection{}
			n.children[k] = c
		}
		n = c
	}
	n.whole, n.children = true, nil
}

// String renders p as sorted paths, for tests and explanations.
func (p *projection) String() string {
	var out []string
	var walk func(n *projection, prefix string)
	walk = func(n *projection, prefix string) {
		if n.whole {
			out = append(out, prefix)
			return
		}
		for k, c := range n.children {
			walk(c, prefix+"."+k)
		}
	}
	walk(p, "input")
	slices.Sort(out)
	return strings.Join(out, " ")
}

var (
	inputVar      = ast.Var("input")
	objectGetName = ast.ObjectGet.Name
)

// projectionOf finds the input paths the modules can read. constant
// resolves a reference to a rule whose value is the same for every input
// (nil: none), so that `input.user[data.p.urn]` is a constant key too.
func projectionOf(modules []*ast.Module, queries []ast.Body, constant func(ast.Ref) *ast.Term) *projection {
	f := &projectionFinder{root: &projection{}, constant: constant}
	for _, m := range modules {
		for _, r := range m.Rules {
			f.walk(r)
		}
	}
	for _, q := range queries {
		f.walk(q)
	}
	if f.root.whole {
		return wholeProjection
	}
	return f.root
}

type projectionFinder struct {
	root     *projection
	constant func(ast.Ref) *ast.Term
}

// walk visits x, recording every use of input.
func (f *projectionFinder) walk(x any) {
	ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case *ast.Expr:
			// object.get(input…, path, default, out): the compiled form
			// of `out := object.get(…)`.
			if terms, ok := x.Terms.([]*ast.Term); ok && f.objectGet(ast.Call(terms)) {
				for _, w := range x.With {
					f.walk(w)
				}
				return true
			}
		case *ast.Term:
			switch v := x.Value.(type) {
			case ast.Var:
				if v.Equal(inputVar) {
					f.root.add(nil) // input itself, as a value
				}
			case ast.Ref:
				if v.HasPrefix(ast.InputRootRef) {
					f.ref(v, nil)
					return true
				}
			case ast.Call:
				return f.objectGet(v)
			}
		}
		return false
	}).Walk(x)
}

// ref records input reference r: its constant prefix is read, and below it
// the whole subtree (a variable or computed key may reach anything).
// Operands are walked for further references. extra continues the path
// (object.get's constant path).
func (f *projectionFinder) ref(r ast.Ref, extra []string) {
	path := make([]string, 0, len(r)+len(extra))
	constant := true
	for _, op := range r[1:] {
		if constant {
			if k, ok := f.key(op); ok {
				path = append(path, k)
				continue
			}
			constant = false
		}
		f.walk(op) // operands may hold references themselves
	}
	if constant {
		path = append(path, extra...)
	}
	f.root.add(path)
}

// key returns the constant string key op names, resolving references to
// constant rules.
func (f *projectionFinder) key(op *ast.Term) (string, bool) {
	switch v := op.Value.(type) {
	case ast.String:
		return string(v), true
	case ast.Ref:
		if f.constant != nil {
			if t := f.constant(v); t != nil {
				if s, ok := t.Value.(ast.String); ok {
					return string(s), true
				}
			}
		}
	}
	return "", false
}

// objectGet handles object.get(input…, path, default) with a constant path:
// the input below ref+path is read. It reports whether c was such a call
// (its terms were then visited).
func (f *projectionFinder) objectGet(c ast.Call) bool {
	if len(c) < 3 {
		return false
	}
	op, ok := c[0].Value.(ast.Ref)
	if !ok || op.String() != objectGetName {
		return false
	}
	var base ast.Ref
	switch v := c[1].Value.(type) {
	case ast.Var:
		if !v.Equal(inputVar) {
			return false
		}
		base = ast.InputRootRef
	case ast.Ref:
		if !v.HasPrefix(ast.InputRootRef) {
			return false
		}
		base = v
	default:
		return false
	}
	var extra []string
	switch p := c[2].Value.(type) {
	case ast.String:
		extra = []string{string(p)}
	case *ast.Array:
		for i := range p.Len() {
			k, ok := f.key(p.Elem(i))
			if !ok {
				extra = nil
				f.walk(c[2])
				break
			}
			extra = append(extra, k)
		}
		if len(extra) != p.Len() {
			extra = nil
		}
	default:
		f.walk(c[2])
	}
	f.ref(base, extra)
	for _, t := range c[3:] {
		f.walk(t)
	}
	return true
}
