package shell

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// assign performs one assignment: name=value, name+=value, name=(...),
// name[i]=value.
func (r *Runner) assign(as *syntax.Assign, local bool) error {
	if as.Name == nil {
		return fmt.Errorf("invalid assignment")
	}
	name := as.Name.Value
	if local {
		r.makeLocal(name)
	}
	old := r.vars[name]
	switch {
	case as.Array != nil:
		v, err := r.arrayValue(as.Array, old, as.Append)
		if err != nil {
			return err
		}
		return r.setVar(name, v)
	case as.Index != nil:
		val := r.literal(as.Value)
		if old.Kind == expand.Associative {
			key := r.indexKey(as.Index)
			m := old.Map
			if m == nil {
				m = map[string]string{}
			}
			if as.Append {
				val = m[key] + val
			}
			m[key] = val
			old.Set, old.Map = true, m
			return r.setVar(name, old)
		}
		i := r.arith(as.Index)
		v := toIndexed(old)
		if i < 0 {
			i += maxIndex(v) + 1
			if i < 0 {
				return fmt.Errorf("%s[%d]: bad array subscript", name, i-maxIndex(v)-1)
			}
		}
		if as.Append {
			if cur, ok := getIndex(v, i); ok {
				val = cur + val
			}
		}
		return r.setVar(name, setIndex(v, i, val))
	}
	val := ""
	if as.Value != nil {
		val = r.literal(as.Value)
	}
	if as.Append {
		switch old.Kind {
		case expand.Indexed:
			cur, _ := getIndex(old, 0)
			return r.setVar(name, setIndex(old, 0, cur+val))
		case expand.Associative:
			old.Map["0"] += val
			return r.setVar(name, old)
		}
		val = old.String() + val
	}
	if old.Kind == expand.Indexed && old.IsSet() {
		return r.setVar(name, setIndex(old, 0, val))
	}
	if old.Kind == expand.Associative {
		old.Map["0"] = val
		return r.setVar(name, old)
	}
	return r.setVar(name, expand.Variable{Set: true, Kind: expand.String, Str: val})
}

// arrayValue builds the value of name=(...) or name+=(...).
func (r *Runner) arrayValue(arr *syntax.ArrayExpr, old expand.Variable, app bool) (expand.Variable, error) {
	if old.Kind == expand.Associative {
		m := map[string]string{}
		if app && old.Map != nil {
			m = old.Map
		}
		for _, el := range arr.Elems {
			if el.Index == nil {
				return old, fmt.Errorf("%s: must use subscript when assigning associative array", r.literal(el.Value))
			}
			m[r.indexKey(el.Index)] = r.literal(el.Value)
		}
		return expand.Variable{Set: true, Kind: expand.Associative, Map: m}, nil
	}
	v := expand.Variable{Set: true, Kind: expand.Indexed}
	next := 0
	if app {
		v = toIndexed(old)
		next = maxIndex(v) + 1
	}
	for _, el := range arr.Elems {
		if el.Index != nil {
			next = r.arith(el.Index)
			v = setIndex(v, next, r.literal(el.Value))
			next++
			continue
		}
		for _, f := range r.fields(el.Value) {
			v = setIndex(v, next, f)
			next++
		}
	}
	v.Set = true
	return v, nil
}

// indexKey is the key an associative array's subscript names. The parser
// reads a subscript as arithmetic (it cannot know the array's kind), so a
// key such as a-b arrives as an expression: it is printed back. (The
// package's own printer would link all of syntax's printing.)
func (r *Runner) indexKey(x syntax.ArithmExpr) string {
	switch x := x.(type) {
	case *syntax.Word:
		return r.literal(x)
	case *syntax.BinaryArithm:
		return r.indexKey(x.X) + x.Op.String() + r.indexKey(x.Y)
	case *syntax.UnaryArithm:
		if x.Post {
			return r.indexKey(x.X) + x.Op.String()
		}
		return x.Op.String() + r.indexKey(x.X)
	case *syntax.ParenArithm:
		return "(" + r.indexKey(x.X) + ")"
	}
	return ""
}

// toIndexed returns v as an indexed array (a string becomes its element 0).
func toIndexed(v expand.Variable) expand.Variable {
	switch v.Kind {
	case expand.Indexed:
		return v
	case expand.String:
		if v.IsSet() {
			return expand.Variable{Set: true, Kind: expand.Indexed, List: []string{v.Str}, Exported: v.Exported, ReadOnly: v.ReadOnly, Local: v.Local}
		}
	}
	return expand.Variable{Set: v.Set, Kind: expand.Indexed, Exported: v.Exported, ReadOnly: v.ReadOnly, Local: v.Local}
}

func maxIndex(v expand.Variable) int {
	if v.Indexes != nil {
		if len(v.Indexes) == 0 {
			return -1
		}
		return v.Indexes[len(v.Indexes)-1]
	}
	return len(v.List) - 1
}

func getIndex(v expand.Variable, i int) (string, bool) {
	if v.Indexes == nil {
		if i >= 0 && i < len(v.List) {
			return v.List[i], true
		}
		return "", false
	}
	if pos, ok := slices.BinarySearch(v.Indexes, i); ok {
		return v.List[pos], true
	}
	return "", false
}

// setIndex sets element i of the indexed array v, which stays dense as
// long as it can.
func setIndex(v expand.Variable, i int, s string) expand.Variable {
	v.Set = true
	v.Kind = expand.Indexed
	if v.Indexes == nil {
		switch {
		case i < len(v.List):
			v.List[i] = s
			return v
		case i == len(v.List):
			v.List = append(v.List, s)
			return v
		}
		v.Indexes = make([]int, len(v.List))
		for j := range v.Indexes {
			v.Indexes[j] = j
		}
	}
	pos, ok := slices.BinarySearch(v.Indexes, i)
	if ok {
		v.List[pos] = s
		return v
	}
	v.Indexes = slices.Insert(v.Indexes, pos, i)
	v.List = slices.Insert(v.List, pos, s)
	return v
}

// unsetIndex removes element i of v.
func unsetIndex(v expand.Variable, i int) expand.Variable {
	if v.Indexes == nil {
		if i < 0 || i >= len(v.List) {
			return v
		}
		if i == len(v.List)-1 {
			v.List = v.List[:i]
			return v
		}
		v.Indexes = make([]int, len(v.List))
		for j := range v.Indexes {
			v.Indexes[j] = j
		}
	}
	if pos, ok := slices.BinarySearch(v.Indexes, i); ok {
		v.Indexes = slices.Delete(v.Indexes, pos, pos+1)
		v.List = slices.Delete(v.List, pos, pos+1)
	}
	return v
}

// declClause runs declare, local, export, readonly and typeset as the
// parser saw them.
func (r *Runner) declClause(dc *syntax.DeclClause) int {
	variant := dc.Variant.Value
	var flags []string
	var items []declItem
	for _, as := range dc.Args {
		if as.Naked && as.Name == nil {
			for _, f := range r.fields(as.Value) {
				if (strings.HasPrefix(f, "-") || strings.HasPrefix(f, "+")) && len(items) == 0 && len(f) > 1 {
					flags = append(flags, f)
					continue
				}
				items = append(items, declItem{word: f})
			}
			continue
		}
		items = append(items, declItem{as: as})
	}
	return r.declare(variant, flags, items)
}

// declItem is one operand of a declaration: a parsed assignment, or a word
// (name or name=value) that came from an expansion.
type declItem struct {
	as   *syntax.Assign
	word string
}

func (it declItem) name() string {
	if it.as != nil {
		return it.as.Name.Value
	}
	name, _, _ := strings.Cut(it.word, "=")
	if i := strings.IndexByte(name, '['); i >= 0 {
		name = name[:i]
	}
	return strings.TrimSuffix(name, "+")
}

// declare is the one implementation of declare and its kin.
func (r *Runner) declare(variant string, flags []string, items []declItem) int {
	var set, unset string
	for _, f := range flags {
		if f == "--" {
			continue
		}
		if f[0] == '-' {
			set += f[1:]
		} else {
			unset += f[1:]
		}
	}
	has := func(c byte) bool { return strings.IndexByte(set, c) >= 0 }
	local := variant == "local" || ((variant == "declare" || variant == "typeset") && r.funcDepth > 0 && !has('g'))
	if variant == "local" && r.funcDepth == 0 {
		r.errf("local: can only be used in a function")
		return 1
	}
	if has('f') || has('F') {
		status := 0
		for _, it := range items {
			if _, ok := r.funcs[it.name()]; !ok {
				status = 1
			} else if has('F') {
				fmt.Fprintln(r.stdout(), it.name())
			}
		}
		return status
	}
	if has('p') || (len(items) == 0 && variant != "local") {
		return r.printDecls(variant, items, set)
	}
	status := 0
	for _, it := range items {
		name := it.name()
		if !validName(name) {
			r.errf("%s: `%s': not a valid identifier", variant, it.word)
			status = 1
			continue
		}
		if local {
			r.makeLocal(name)
		}
		v := r.vars[name]
		if has('a') && v.Kind != expand.Indexed {
			v = toIndexed(v)
		}
		if has('A') && v.Kind != expand.Associative {
			v = expand.Variable{Kind: expand.Associative, Map: map[string]string{}, Exported: v.Exported, Local: v.Local}
		}
		r.vars[name] = v
		var err error
		switch {
		case it.as != nil && (!it.as.Naked || it.as.Array != nil):
			err = r.assign(it.as, false)
		case it.as == nil && strings.Contains(it.word, "="):
			err = r.assignWord(it.word)
		}
		if err != nil {
			r.errf("%s: %s", variant, err)
			status = 1
			continue
		}
		v = r.vars[name]
		if variant == "export" || has('x') {
			v.Exported = !strings.Contains(unset, "x") && !has('n')
			if variant == "export" && has('n') {
				v.Exported = false
			}
		}
		if strings.Contains(unset, "x") {
			v.Exported = false
		}
		if variant == "readonly" || has('r') {
			v.ReadOnly = true
		}
		r.vars[name] = v
	}
	return status
}

// assignWord performs an assignment given as one word (name=value), as
// export does for a word that came from an expansion.
func (r *Runner) assignWord(word string) error {
	name, val, _ := strings.Cut(word, "=")
	app := strings.HasSuffix(name, "+")
	name = strings.TrimSuffix(name, "+")
	if app {
		val = r.vars[name].String() + val
	}
	return r.setVar(name, expand.Variable{Set: true, Kind: expand.String, Str: val})
}

func (r *Runner) printDecls(variant string, items []declItem, set string) int {
	names := make([]string, 0, len(items))
	for _, it := range items {
		names = append(names, it.name())
	}
	if len(names) == 0 {
		for name := range r.Each {
			v := r.vars[name]
			if variant == "export" && !v.Exported || variant == "readonly" && !v.ReadOnly {
				continue
			}
			names = append(names, name)
		}
	}
	status := 0
	for _, name := range names {
		v, ok := r.vars[name]
		if !ok {
			r.errf("%s: %s: not found", variant, name)
			status = 1
			continue
		}
		fmt.Fprintln(r.stdout(), declString(name, v))
	}
	_ = set
	return status
}

// declString prints a variable as declare -p does.
func declString(name string, v expand.Variable) string {
	flags := ""
	switch v.Kind {
	case expand.Indexed:
		flags += "a"
	case expand.Associative:
		flags += "A"
	}
	if v.ReadOnly {
		flags += "r"
	}
	if v.Exported {
		flags += "x"
	}
	if flags == "" {
		flags = "-"
	}
	s := "declare -" + strings.TrimPrefix(flags, "-") + " " + name
	if flags == "-" {
		s = "declare -- " + name
	}
	if !v.IsSet() {
		return s
	}
	switch v.Kind {
	case expand.Indexed:
		var b []byte
		b = append(b, "=("...)
		for i, s := range v.List {
			idx := i
			if v.Indexes != nil {
				idx = v.Indexes[i]
			}
			if i > 0 {
				b = append(b, ' ')
			}
			b = fmt.Appendf(b, "[%d]=%s", idx, strconv.Quote(s))
		}
		b = append(b, ")"...)
		return s + string(b)
	case expand.Associative:
		var b []byte
		b = append(b, "=("...)
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range v.Map {
				if !yield(k) {
					return
				}
			}
		}) {
			b = fmt.Appendf(b, "[%s]=%s ", k, strconv.Quote(v.Map[k]))
		}
		b = append(b, ")"...)
		return s + string(b)
	}
	return s + "=" + strconv.Quote(v.Str)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
