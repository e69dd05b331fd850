package jq

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Env is what a run of a program reaches: its variables ($name, $ENV)
// and a step counter that bounds it.
type Env struct {
	Vars map[string]any
	Step func()
}

// Error is a jq runtime error: error(v), or a failed operation.
type Error struct{ Value any }

func (e *Error) Error() string {
	if s, ok := e.Value.(string); ok {
		return s
	}
	var b strings.Builder
	Encode(&b, e.Value, EncodeOpts{})
	return b.String() + " (not a string)"
}

func errorf(format string, args ...any) error { return &Error{Value: fmt.Sprintf(format, args...)} }

// errStop ends a generator early (first, limit, isempty).
var errStop = errors.New("stop")

// Run runs the program on one input and calls out with each output.
func (p *Program) Run(input any, env Env, out func(any) error) error {
	if env.Step == nil {
		env.Step = func() {}
	}
	c := &ctx{env: env}
	var vars *scope
	for k, v := range env.Vars {
		vars = &scope{name: k, v: v, up: vars}
	}
	return p.root.eval(c, input, vars, out)
}

type ctx struct {
	env   Env
	depth int
}

// scope is a chain of variable bindings.
type scope struct {
	name string
	v    any
	up   *scope
}

func (s *scope) lookup(name string) (any, bool) {
	for ; s != nil; s = s.up {
		if s.name == name {
			return s.v, true
		}
	}
	return nil, false
}

type emit = func(any) error

type node interface {
	eval(c *ctx, in any, s *scope, out emit) error
}

// pather is a node that is a path expression: it can say which paths of
// its input it selects (for assignment, del, paths).
type pather interface {
	paths(c *ctx, in any, s *scope, path []any, out func(path []any, v any) error) error
}

type identity struct{}

func (identity) eval(_ *ctx, in any, _ *scope, out emit) error { return out(in) }
func (identity) paths(_ *ctx, in any, _ *scope, path []any, out func([]any, any) error) error {
	return out(path, in)
}

type literal struct{ v any }

func (l *literal) eval(_ *ctx, _ any, _ *scope, out emit) error { return out(l.v) }

type pipe struct{ l, r node }

func (p *pipe) eval(c *ctx, in any, s *scope, out emit) error {
	return p.l.eval(c, in, s, func(v any) error { return p.r.eval(c, v, s, out) })
}

func (p *pipe) paths(c *ctx, in any, s *scope, path []any, out func([]any, any) error) error {
	lp, ok := p.l.(pather)
	rp, ok2 := p.r.(pather)
	if !ok || !ok2 {
		return errorf("Invalid path expression")
	}
	return lp.paths(c, in, s, path, func(pa []any, v any) error { return rp.paths(c, v, s, pa, out) })
}

type comma struct{ l, r node }

func (n *comma) eval(c *ctx, in any, s *scope, out emit) error {
	if err := n.l.eval(c, in, s, out); err != nil {
		return err
	}
	return n.r.eval(c, in, s, out)
}

func (n *comma) paths(c *ctx, in any, s *scope, path []any, out func([]any, any) error) error {
	lp, ok := n.l.(pather)
	rp, ok2 := n.r.(pather)
	if !ok || !ok2 {
		return errorf("Invalid path expression")
	}
	if err := lp.paths(c, in, s, path, out); err != nil {
		return err
	}
	return rp.paths(c, in, s, path, out)
}

type varRef struct{ name string }

func (v *varRef) eval(_ *ctx, _ any, s *scope, out emit) error {
	val, ok := s.lookup(v.name)
	if !ok {
		if v.name == "__loc__" {
			return out(NewObject())
		}
		return errorf("$%s is not defined", v.name)
	}
	return out(val)
}

type asBind struct {
	source node
	name   string
	body   node
}

func (a *asBind) eval(c *ctx, in any, s *scope, out emit) error {
	return a.source.eval(c, in, s, func(v any) error {
		return a.body.eval(c, in, &scope{name: a.name, v: v, up: s}, out)
	})
}

func (a *asBind) paths(c *ctx, in any, s *scope, path []any, out func([]any, any) error) error {
	bp, ok := a.body.(pather)
	if !ok {
		return errorf("Invalid path expression")
	}
	return a.source.eval(c, in, s, func(v any) error {
		return bp.paths(c, in, &scope{name: a.name, v: v, up: s}, path, out)
	})
}

// index is target[key] (and .name).
type index struct{ target, key node }

func (n *index) eval(c *ctx, in any, s *scope, out emit) error {
	return n.target.eval(c, in, s, func(t any) error {
		return n.key.eval(c, in, s, func(k any) error {
			v, err := indexValue(t, k)
			if err != nil {
				return err
			}
			return out(v)
		})
	})
}

func (n *index) paths(c *ctx, in any, s *scope, path []any, out func([]any, any) error) error {
	tp, ok := n.target.(pather)
	if !ok {
		return errorf("Invalid path expression")
	}
	return tp.paths(c, in, s, path, func(pa []any, t any) error {
		return n.key.eval(c, in, s, func(k any) error {
			v, err := indexValue(t, k)
			if err != nil {
				return err
			}
			return out(appendPath(pa, k), v)
		})
	})
}

func appendPath(p []any, k any) []any {
	out := make([]any, len(p)+1)
	copy(out, p)
	out[len(p)] = k
	return out
}

func indexValue(t, k any) (any, error) {
	switch t := t.(type) {
	case nil:
		switch k.(type) {
		case string, float64, nil:
			return nil, nil
		}
	case *Object:
		if ks, ok := k.(string); ok {
			v, _ := t.get(ks)
			return v, nil
		}
	case []any:
		switch k := k.(type) {
		case float64:
			i := int(math.Floor(k))
			if i < 0 {
				i += len(t)
			}
			if i < 0 || i >= len(t) {
				return nil, nil
			}
			return t[i], nil
		case []any:
			return indicesOf(t, k), nil
		}
	}
	if ks, ok := k.(string); ok {
		return nil, errorf("Cannot index %s with \"%s\"", typeName(t), ks)
	}
	return nil, errorf("Cannot index %s with %s", typeName(t), typeName(k))
}

type slice struct{ target, from, to node }

func (n *slice) eval(c *ctx, in any, s *scope, out emit) error {
	return n.target.eval(c, in, s, func(t any) error {
		return n.bounds(c, in, s, func(from, to any) error {
			v, err := sliceValue(t, from, to)
			if err != nil {
				return err
			}
			return out(v)
		})
	})
}

func (n *slice) bounds(c *ctx, in any, s *scope, f func(from, to any) error) error {
	ev := func(e node, g func(any) error) error {
		if e == nil {
			return g(nil)
		}
		return e.eval(c, in, s, g)
	}
	return ev(n.to, func(to any) error {
		return ev(n.from, func(from any) error { return f(from, to) })
	})
}

func (n *slice) paths(c *ctx, in any, s *scope, path []any, out func([]any, any) error) error {
	tp, ok := n.target.(pather)
	if !ok {
		return errorf("Invalid path expression")
	}
	return tp.paths(c, in, s, path, func(pa []any, t any) error {
		return n.bounds(c, in, s, func(from, to any) error {
			v, err := sliceValue(t, from, to)
			if err != nil {
				return err
			}
			key := NewObject()
			key.set("start", from)
			key.set("end", to)
			return out(appendPath(pa, key), v)
		})
	})
}

func sliceBounds(n int, from, to any) (int, int, error) {
	get := func(v any, def int) (int, error) {
		switch v := v.(type) {
		case nil:
			return def, nil
		case float64:
			i := int(math.Floor(v))
			if i < 0 {
				i += n
			}
			return min(max(i, 0), n), nil
		}
		return 0, errorf("Start and end indices of an array slice must be numbers")
	}
	a, err := get(from, 0)
	if err != nil {
		return 0, 0, err
	}
	b, err := get(to, n)
	if err != nil {
		return 0, 0, err
	}
	return a, max(a, b), nil
}

func sliceValue(t, from, to any) (any, error) {
	switch t := t.(type) {
	case nil:
		return nil, nil
	case []any:
		a, b, err := sliceBounds(len(t), from, to)
		if err != nil {
			return nil, err
		}
		return t[a:b], nil
	case string:
		rs := []rune(t)
		a, b, err := sliceBounds(len(rs), from, to)
		if err != nil {
			return nil, err
		}
		return string(rs[a:b]), nil
	}
	return nil, errorf("Cannot index %s with object", typeName(t))
}

type iterate struct{ target node }

func (n *iterate) eval(c *ctx, in any, s *scope, out emit) error {
	return n.target.eval(c, in, s, func(t any) error {
		return eachValue(c, t, func(_ any, v any) error { return out(v) })
	})
}

func (n *iterate) paths(c *ctx, in any, s *scope, path []any, out func([]any, any) error) error {
	tp, ok := n.target.(pather)
	if !ok {
		return errorf("Invalid path expression")
	}
	return tp.paths(c, in, s, path, func(pa []any, t any) error {
		if t == nil {
			return nil
		}
		return eachValue(c, t, func(k any, v any) error { return out(appendPath(pa, k), v) })
	})
}

func eachValue(c *ctx, t any, f func(k, v any) error) error {
	switch t := t.(type) {
	case []any:
		for i, v := range t {
			c.env.Step()
			if err := f(float64(i), v); err != nil {
				return err
			}
		}
		return nil
	case *Object:
		for _, k := range t.keys {
			c.env.Step()
			if err := f(k, t.m[k]); err != nil {
				return err
			}
		}
		return nil
	}
	return errorf("Cannot iterate over %s", describe(t))
}

// describe names a value in an error, as jq does: number (1), "abc", null.
func describe(v any) string {
	if v == nil {
		return "null"
	}
	var b strings.Builder
	Encode(&b, v, EncodeOpts{})
	s := b.String()
	if len(s) > 11 {
		s = s[:10] + "..."
	}
	return typeName(v) + " (" + s + ")"
}

type try struct{ body, handler node }

func (t *try) eval(c *ctx, in any, s *scope, out emit) error {
	err := t.body.eval(c, in, s, func(v any) error {
		if err := out(v); err != nil {
			return &passThrough{err}
		}
		return nil
	})
	var pt *passThrough
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pt):
		return pt.err
	case errors.Is(err, errStop):
		return err
	}
	var je *Error
	if t.handler == nil || !errors.As(err, &je) {
		if errors.As(err, &je) {
			return nil
		}
		return err
	}
	return t.handler.eval(c, je.Value, s, out)
}

func (t *try) paths(c *ctx, in any, s *scope, path []any, out func([]any, any) error) error {
	bp, ok := t.body.(pather)
	if !ok {
		return errorf("Invalid path expression")
	}
	err := bp.paths(c, in, s, path, func(pa []any, v any) error {
		if err := out(pa, v); err != nil {
			return &passThrough{err}
		}
		return nil
	})
	var pt *passThrough
	var je *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pt):
		return pt.err
	case errors.As(err, &je):
		return nil
	}
	return err
}

// passThrough carries an error raised after the try's body produced its
// value (downstream of it), which try must not catch.
type passThrough struct{ err error }

func (p *passThrough) Error() string { return p.err.Error() }

type ifNode struct{ cond, then, els node }

func (n *ifNode) eval(c *ctx, in any, s *scope, out emit) error {
	return n.cond.eval(c, in, s, func(v any) error {
		switch {
		case truthy(v):
			return n.then.eval(c, in, s, out)
		case n.els != nil:
			return n.els.eval(c, in, s, out)
		}
		return out(in)
	})
}

func (n *ifNode) paths(c *ctx, in any, s *scope, path []any, out func([]any, any) error) error {
	return n.cond.eval(c, in, s, func(v any) error {
		b := n.els
		if truthy(v) {
			b = n.then
		}
		if b == nil {
			return out(path, in)
		}
		bp, ok := b.(pather)
		if !ok {
			return errorf("Invalid path expression")
		}
		return bp.paths(c, in, s, path, out)
	})
}

type alternative struct{ l, r node }

func (a *alternative) eval(c *ctx, in any, s *scope, out emit) error {
	found := false
	err := a.l.eval(c, in, s, func(v any) error {
		if truthy(v) {
			found = true
			return out(v)
		}
		return nil
	})
	var je *Error
	if err != nil && !errors.As(err, &je) {
		return err
	}
	if !found {
		return a.r.eval(c, in, s, out)
	}
	return nil
}

type logic struct {
	and  bool
	l, r node
}

func (n *logic) eval(c *ctx, in any, s *scope, out emit) error {
	return n.l.eval(c, in, s, func(a any) error {
		if n.and && !truthy(a) {
			return out(false)
		}
		if !n.and && truthy(a) {
			return out(true)
		}
		return n.r.eval(c, in, s, func(b any) error { return out(truthy(b)) })
	})
}

type negate struct{ e node }

func (n *negate) eval(c *ctx, in any, s *scope, out emit) error {
	return n.e.eval(c, in, s, func(v any) error {
		f, ok := v.(float64)
		if !ok {
			return errorf("%s cannot be negated", describe(v))
		}
		return out(-f)
	})
}

type binop struct {
	op   string
	l, r node
}

func (b *binop) eval(c *ctx, in any, s *scope, out emit) error {
	return b.r.eval(c, in, s, func(rv any) error {
		return b.l.eval(c, in, s, func(lv any) error {
			v, err := arith(b.op, lv, rv)
			if err != nil {
				return err
			}
			return out(v)
		})
	})
}

func arith(op string, a, b any) (any, error) {
	switch op {
	case "==":
		return compare(a, b) == 0, nil
	case "!=":
		return compare(a, b) != 0, nil
	case "<":
		return compare(a, b) < 0, nil
	case "<=":
		return compare(a, b) <= 0, nil
	case ">":
		return compare(a, b) > 0, nil
	case ">=":
		return compare(a, b) >= 0, nil
	}
	af, aNum := a.(float64)
	bf, bNum := b.(float64)
	if aNum && bNum {
		switch op {
		case "+":
			return af + bf, nil
		case "-":
			return af - bf, nil
		case "*":
			return af * bf, nil
		case "/":
			if bf == 0 {
				return nil, errorf("%s and %s cannot be divided because the divisor is zero", describe(a), describe(b))
			}
			return af / bf, nil
		case "%":
			ai, bi := int64(af), int64(bf)
			if bi == 0 {
				return nil, errorf("%s and %s cannot be divided because the divisor is zero", describe(a), describe(b))
			}
			if bi < 0 {
				bi = -bi
			}
			return float64(ai % bi), nil
		}
	}
	switch op {
	case "+":
		switch {
		case a == nil:
			return b, nil
		case b == nil:
			return a, nil
		}
		switch av := a.(type) {
		case string:
			if bs, ok := b.(string); ok {
				return av + bs, nil
			}
		case []any:
			if bs, ok := b.([]any); ok {
				return append(append([]any{}, av...), bs...), nil
			}
		case *Object:
			if bo, ok := b.(*Object); ok {
				o := &Object{keys: append([]string{}, av.keys...), m: make(map[string]any, len(av.m)+len(bo.m))}
				for k, v := range av.m {
					o.m[k] = v
				}
				for _, k := range bo.keys {
					o.set(k, bo.m[k])
				}
				return o, nil
			}
		}
	case "-":
		if av, ok := a.([]any); ok {
			if bv, ok := b.([]any); ok {
				var out []any
				for _, x := range av {
					keep := true
					for _, y := range bv {
						if compare(x, y) == 0 {
							keep = false
							break
						}
					}
					if keep {
						out = append(out, x)
					}
				}
				if out == nil {
					out = []any{}
				}
				return out, nil
			}
		}
	case "*":
		if ao, ok := a.(*Object); ok {
			if bo, ok := b.(*Object); ok {
				return deepMerge(ao, bo), nil
			}
		}
		if as, ok := a.(string); ok && bNum {
			if bf <= 0 {
				return nil, nil
			}
			return strings.Repeat(as, int(math.Ceil(bf))), nil
		}
	case "/":
		if as, ok := a.(string); ok {
			if bs, ok := b.(string); ok {
				return splitString(as, bs), nil
			}
		}
	}
	verb := map[string]string{"+": "added", "-": "subtracted", "*": "multiplied", "/": "divided", "%": "divided"}[op]
	return nil, errorf("%s and %s cannot be %s", describe(a), describe(b), verb)
}

func deepMerge(a, b *Object) *Object {
	o := &Object{keys: append([]string{}, a.keys...), m: make(map[string]any, len(a.m))}
	for k, v := range a.m {
		o.m[k] = v
	}
	for _, k := range b.keys {
		bv := b.m[k]
		if ao, ok := o.m[k].(*Object); ok {
			if bo, ok := bv.(*Object); ok {
				o.set(k, deepMerge(ao, bo))
				continue
			}
		}
		o.set(k, bv)
	}
	return o
}

func splitString(s, sep string) []any {
	if s == "" {
		return []any{}
	}
	var parts []string
	if sep == "" {
		for _, r := range s {
			parts = append(parts, string(r))
		}
	} else {
		parts = strings.Split(s, sep)
	}
	return strs(parts)
}

type arrayCons struct{ e node }

func (a *arrayCons) eval(c *ctx, in any, s *scope, out emit) error {
	arr := []any{}
	if a.e != nil {
		if err := a.e.eval(c, in, s, func(v any) error {
			c.env.Step()
			arr = append(arr, v)
			return nil
		}); err != nil {
			return err
		}
	}
	return out(arr)
}

type objEntry struct{ key, val node }

type objectCons struct{ entries []objEntry }

func (o *objectCons) eval(c *ctx, in any, s *scope, out emit) error {
	return o.build(c, in, s, 0, NewObject(), out)
}

// build makes the cartesian product of the entries' outputs, as jq does.
func (o *objectCons) build(c *ctx, in any, s *scope, i int, acc *Object, out emit) error {
	if i == len(o.entries) {
		return out(acc)
	}
	e := o.entries[i]
	return e.key.eval(c, in, s, func(k any) error {
		ks, ok := k.(string)
		if !ok {
			return errorf("Object keys must be strings")
		}
		return e.val.eval(c, in, s, func(v any) error {
			return o.build(c, in, s, i+1, acc.with(ks, v), out)
		})
	})
}

// interp is a string with interpolations, maybe in a @format.
type interp struct {
	parts  []strPart
	format string
}

func (n *interp) eval(c *ctx, in any, s *scope, out emit) error {
	return n.build(c, in, s, 0, "", out)
}

func (n *interp) build(c *ctx, in any, s *scope, i int, acc string, out emit) error {
	if i == len(n.parts) {
		return out(acc)
	}
	p := n.parts[i]
	if p.expr == nil {
		return n.build(c, in, s, i+1, acc+p.lit, out)
	}
	return p.expr.eval(c, in, s, func(v any) error {
		var str string
		if n.format != "" {
			f, err := applyFormat(n.format, v)
			if err != nil {
				return err
			}
			str = f
		} else if sv, ok := v.(string); ok {
			str = sv
		} else {
			str = toJSON(v)
		}
		return n.build(c, in, s, i+1, acc+str, out)
	})
}

func toJSON(v any) string {
	var b strings.Builder
	Encode(&b, v, EncodeOpts{})
	return b.String()
}

type format struct{ name string }

func (f *format) eval(_ *ctx, in any, _ *scope, out emit) error {
	s, err := applyFormat(f.name, in)
	if err != nil {
		return err
	}
	return out(s)
}

type reduce struct {
	foreach               bool
	source                node
	name                  string
	init, update, extract node
}

func (r *reduce) eval(c *ctx, in any, s *scope, out emit) error {
	return r.init.eval(c, in, s, func(acc any) error {
		err := r.source.eval(c, in, s, func(v any) error {
			c.env.Step()
			inner := &scope{name: r.name, v: v, up: s}
			var last any
			got := false
			if err := r.update.eval(c, acc, inner, func(nv any) error {
				last, got = nv, true
				if r.foreach {
					if r.extract != nil {
						return r.extract.eval(c, nv, inner, out)
					}
					return out(nv)
				}
				return nil
			}); err != nil {
				return err
			}
			if got {
				acc = last
			} else if !r.foreach {
				acc = nil
			}
			return nil
		})
		if err != nil || r.foreach {
			return err
		}
		return out(acc)
	})
}

// assignment is lhs |= rhs, lhs = rhs, lhs op= rhs.
type assignment struct {
	op       string
	lhs, rhs node
}

func (a *assignment) eval(c *ctx, in any, s *scope, out emit) error {
	lp, ok := a.lhs.(pather)
	if !ok {
		return errorf("Invalid path expression")
	}
	collect := func() ([][]any, error) {
		var ps [][]any
		err := lp.paths(c, in, s, nil, func(p []any, _ any) error {
			ps = append(ps, p)
			return nil
		})
		return ps, err
	}
	if a.op == "|=" {
		ps, err := collect()
		if err != nil {
			return err
		}
		v := in
		for _, p := range ps {
			old, err := getPath(v, p)
			if err != nil {
				return err
			}
			var nv any
			got := false
			if err := a.rhs.eval(c, old, s, func(x any) error {
				nv, got = x, true
				return errStop
			}); err != nil && !errors.Is(err, errStop) {
				return err
			}
			if !got {
				continue
			}
			if v, err = setPath(v, p, nv); err != nil {
				return err
			}
		}
		return out(v)
	}
	return a.rhs.eval(c, in, s, func(r any) error {
		ps, err := collect()
		if err != nil {
			return err
		}
		v := in
		for _, p := range ps {
			nv := r
			if a.op != "=" {
				old, err := getPath(v, p)
				if err != nil {
					return err
				}
				if a.op == "//=" {
					if truthy(old) {
						continue
					}
				} else if nv, err = arith(strings.TrimSuffix(a.op, "="), old, r); err != nil {
					return err
				}
			}
			if v, err = setPath(v, p, nv); err != nil {
				return err
			}
		}
		return out(v)
	})
}

func getPath(v any, path []any) (any, error) {
	for _, k := range path {
		if v == nil {
			return nil, nil
		}
		if o, ok := k.(*Object); ok { // a slice
			var err error
			if v, err = sliceValue(v, o.m["start"], o.m["end"]); err != nil {
				return nil, err
			}
			continue
		}
		var err error
		if v, err = indexValue(v, k); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func setPath(v any, path []any, x any) (any, error) {
	if len(path) == 0 {
		return x, nil
	}
	k := path[0]
	switch key := k.(type) {
	case string:
		var o *Object
		switch t := v.(type) {
		case nil:
			o = NewObject()
		case *Object:
			o = t
		default:
			return nil, errorf("Cannot index %s with \"%s\"", typeName(v), key)
		}
		child, _ := o.get(key)
		nv, err := setPath(child, path[1:], x)
		if err != nil {
			return nil, err
		}
		return o.with(key, nv), nil
	case float64:
		var arr []any
		switch t := v.(type) {
		case nil:
		case []any:
			arr = t
		default:
			return nil, errorf("Cannot index %s with number", typeName(v))
		}
		i := int(key)
		if i < 0 {
			i += len(arr)
			if i < 0 {
				return nil, errorf("Out of bounds negative array index")
			}
		}
		if i > 1<<20 {
			return nil, errorf("Array index too large")
		}
		na := append([]any{}, arr...)
		for len(na) <= i {
			na = append(na, nil)
		}
		var child any
		if i < len(arr) {
			child = arr[i]
		}
		nv, err := setPath(child, path[1:], x)
		if err != nil {
			return nil, err
		}
		na[i] = nv
		return na, nil
	case *Object: // a slice
		arr, _ := v.([]any)
		if v != nil && arr == nil {
			return nil, errorf("Cannot update field at object index of %s", typeName(v))
		}
		a, b, err := sliceBounds(len(arr), key.m["start"], key.m["end"])
		if err != nil {
			return nil, err
		}
		nv, err := setPath(arr[a:b], path[1:], x)
		if err != nil {
			return nil, err
		}
		repl, ok := nv.([]any)
		if !ok {
			return nil, errorf("A slice of an array can only be assigned another array")
		}
		out := append(append(append([]any{}, arr[:a]...), repl...), arr[b:]...)
		return out, nil
	}
	return nil, errorf("Invalid path component")
}

// deletePaths removes paths from v, the longest and last first so that
// earlier deletions do not move later ones.
func deletePaths(v any, paths [][]any) (any, error) {
	sorted := append([][]any{}, paths...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && compare(sorted[j], sorted[j-1]) > 0; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	var err error
	for _, p := range sorted {
		if v, err = deletePath(v, p); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func deletePath(v any, path []any) (any, error) {
	if len(path) == 0 || v == nil {
		return nil, nil
	}
	k := path[0]
	if len(path) == 1 {
		switch t := v.(type) {
		case *Object:
			if ks, ok := k.(string); ok {
				return t.without(ks), nil
			}
		case []any:
			switch key := k.(type) {
			case float64:
				i := int(key)
				if i < 0 {
					i += len(t)
				}
				if i < 0 || i >= len(t) {
					return t, nil
				}
				return append(append([]any{}, t[:i]...), t[i+1:]...), nil
			case *Object:
				a, b, err := sliceBounds(len(t), key.m["start"], key.m["end"])
				if err != nil {
					return nil, err
				}
				return append(append([]any{}, t[:a]...), t[b:]...), nil
			}
		}
		return nil, errorf("Cannot delete field at index of %s", typeName(v))
	}
	child, err := getPath(v, path[:1])
	if err != nil {
		return nil, err
	}
	nc, err := deletePath(child, path[1:])
	if err != nil {
		return nil, err
	}
	if child == nil {
		return v, nil
	}
	return setPath(v, path[:1], nc)
}
