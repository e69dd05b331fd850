package jq

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// call is a builtin applied to its argument filters.
type call struct {
	name string
	args []node
	fn   builtinFn
}

type builtinFn func(c *ctx, in any, s *scope, args []node, out emit) error

// builtins by "name/arity".
var builtins map[string]builtinFn

func newCall(name string, args []node) (node, error) {
	fn, ok := builtins[name+"/"+strconv.Itoa(len(args))]
	if !ok {
		return nil, fmt.Errorf("%s/%d is not defined", name, len(args))
	}
	return &call{name: name, args: args, fn: fn}, nil
}

func (n *call) eval(c *ctx, in any, s *scope, out emit) error {
	c.env.Step()
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > 1000 {
		return errorf("too deep")
	}
	return n.fn(c, in, s, n.args, out)
}

// paths supports the builtins that are path expressions.
func (n *call) paths(c *ctx, in any, s *scope, path []any, out func([]any, any) error) error {
	switch n.name + "/" + strconv.Itoa(len(n.args)) {
	case "empty/0":
		return nil
	case "select/1":
		return n.args[0].eval(c, in, s, func(v any) error {
			if truthy(v) {
				return out(path, in)
			}
			return nil
		})
	case "recurse/0":
		var walk func(p []any, v any) error
		walk = func(p []any, v any) error {
			c.env.Step()
			if err := out(p, v); err != nil {
				return err
			}
			switch v.(type) {
			case []any, *Object:
				return eachValue(c, v, func(k, x any) error { return walk(appendPath(p, k), x) })
			}
			return nil
		}
		return walk(path, in)
	case "first/1", "last/1":
		ap, ok := n.args[0].(pather)
		if !ok {
			return errorf("Invalid path expression")
		}
		var lastP []any
		var lastV any
		got := false
		err := ap.paths(c, in, s, path, func(p []any, v any) error {
			lastP, lastV, got = p, v, true
			if n.name == "first" {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		if got {
			return out(lastP, lastV)
		}
		return nil
	case "getpath/1":
		return n.args[0].eval(c, in, s, func(p any) error {
			ps, ok := p.([]any)
			if !ok {
				return errorf("Path must be specified as an array")
			}
			v, err := getPath(in, ps)
			if err != nil {
				return err
			}
			return out(append(append([]any{}, path...), ps...), v)
		})
	case "paths/0":
	}
	return errorf("Invalid path expression with result %s", n.name)
}

func num(v any, name string) (float64, error) {
	f, ok := v.(float64)
	if !ok {
		return 0, errorf("%s number required", describe(v))
	}
	return f, nil
}

func str(v any, name string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", errorf("%s cannot be %s, as it is not a string", describe(v), name)
	}
	return s, nil
}

// simple makes a 0-ary builtin of a function of the input.
func simple(f func(v any) (any, error)) builtinFn {
	return func(_ *ctx, in any, _ *scope, _ []node, out emit) error {
		v, err := f(in)
		if err != nil {
			return err
		}
		return out(v)
	}
}

// withArg makes a 1-ary builtin of a function of the input and the
// argument's value, for each of the argument's outputs.
func withArg(f func(in, arg any) (any, error)) builtinFn {
	return func(c *ctx, in any, s *scope, args []node, out emit) error {
		return args[0].eval(c, in, s, func(a any) error {
			v, err := f(in, a)
			if err != nil {
				return err
			}
			return out(v)
		})
	}
}

func math1(f func(float64) float64) builtinFn {
	return simple(func(v any) (any, error) {
		x, err := num(v, "")
		if err != nil {
			return nil, err
		}
		return f(x), nil
	})
}

func length(v any) (any, error) {
	switch v := v.(type) {
	case nil:
		return 0.0, nil
	case bool:
		return nil, errorf("boolean (%v) has no length", v)
	case float64:
		return math.Abs(v), nil
	case string:
		return float64(utf8.RuneCountInString(v)), nil
	case []any:
		return float64(len(v)), nil
	case *Object:
		return float64(len(v.keys)), nil
	}
	return nil, errorf("no length")
}

func keys(v any, sorted bool) (any, error) {
	switch v := v.(type) {
	case *Object:
		if sorted {
			return strs(v.sortedKeys()), nil
		}
		return strs(v.keys), nil
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = float64(i)
		}
		return out, nil
	}
	return nil, errorf("%s has no keys", describe(v))
}

func values(v any) ([]any, error) {
	switch v := v.(type) {
	case []any:
		return v, nil
	case *Object:
		out := make([]any, len(v.keys))
		for i, k := range v.keys {
			out[i] = v.m[k]
		}
		return out, nil
	}
	return nil, errorf("Cannot iterate over %s", describe(v))
}

func add(v any) (any, error) {
	vs, err := values(v)
	if err != nil {
		if v == nil {
			return nil, nil
		}
		return nil, err
	}
	var acc any
	for _, x := range vs {
		if acc, err = arith("+", acc, x); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

func has(in, k any) (any, error) {
	switch t := in.(type) {
	case *Object:
		if ks, ok := k.(string); ok {
			_, ok := t.get(ks)
			return ok, nil
		}
	case []any:
		if f, ok := k.(float64); ok {
			return f >= 0 && int(f) < len(t), nil
		}
	}
	return nil, errorf("Cannot check whether %s has a %s key", typeName(in), typeName(k))
}

func contains(a, b any) (bool, error) {
	switch av := a.(type) {
	case *Object:
		bo, ok := b.(*Object)
		if !ok {
			break
		}
		for _, k := range bo.keys {
			x, ok := av.get(k)
			if !ok {
				return false, nil
			}
			if c, err := contains(x, bo.m[k]); err != nil || !c {
				return false, err
			}
		}
		return true, nil
	case []any:
		bv, ok := b.([]any)
		if !ok {
			break
		}
		for _, y := range bv {
			found := false
			for _, x := range av {
				if c, _ := contains(x, y); c {
					found = true
					break
				}
			}
			if !found {
				return false, nil
			}
		}
		return true, nil
	case string:
		if bs, ok := b.(string); ok {
			return strings.Contains(av, bs), nil
		}
	default:
		if typeName(a) == typeName(b) {
			return compare(a, b) == 0, nil
		}
	}
	return false, errorf("%s and %s cannot have their containment checked", describe(a), describe(b))
}

func indicesOf(t, sub any) any {
	out := []any{}
	switch t := t.(type) {
	case string:
		s, ok := sub.(string)
		if !ok || s == "" {
			return nil
		}
		for i := 0; i <= len(t)-len(s); i++ {
			if t[i:i+len(s)] == s {
				out = append(out, float64(utf8.RuneCountInString(t[:i])))
			}
		}
	case []any:
		subs, ok := sub.([]any)
		if !ok {
			subs = []any{sub}
		}
		if len(subs) == 0 {
			return nil
		}
		for i := 0; i+len(subs) <= len(t); i++ {
			match := true
			for j := range subs {
				if compare(t[i+j], subs[j]) != 0 {
					match = false
					break
				}
			}
			if match {
				out = append(out, float64(i))
			}
		}
	default:
		return nil
	}
	return out
}

// sortBy sorts v's elements by the keys f gives them (a stable sort).
func sortBy(c *ctx, v any, s *scope, f node) ([]any, [][]any, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, nil, errorf("%s cannot be sorted, as it is not an array", describe(v))
	}
	keys := make([][]any, len(arr))
	for i, x := range arr {
		c.env.Step()
		var k []any
		if err := f.eval(c, x, s, func(y any) error { k = append(k, y); return nil }); err != nil {
			return nil, nil, err
		}
		keys[i] = k
	}
	idx := make([]int, len(arr))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return compare(keys[idx[i]], keys[idx[j]]) < 0 })
	out := make([]any, len(arr))
	outKeys := make([][]any, len(arr))
	for i, j := range idx {
		out[i], outKeys[i] = arr[j], keys[j]
	}
	return out, outKeys, nil
}

func toEntries(v any) (any, error) {
	if arr, ok := v.([]any); ok {
		out := make([]any, len(arr))
		for i, x := range arr {
			e := NewObject()
			e.set("key", float64(i))
			e.set("value", x)
			out[i] = e
		}
		return out, nil
	}
	o, ok := v.(*Object)
	if !ok {
		return nil, errorf("%s has no keys", describe(v))
	}
	out := make([]any, len(o.keys))
	for i, k := range o.keys {
		e := NewObject()
		e.set("key", k)
		e.set("value", o.m[k])
		out[i] = e
	}
	return out, nil
}

func fromEntries(v any) (any, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errorf("Cannot iterate over %s", describe(v))
	}
	o := NewObject()
	for _, e := range arr {
		eo, ok := e.(*Object)
		if !ok {
			return nil, errorf("Cannot index %s with \"key\"", typeName(e))
		}
		var k any
		for _, name := range []string{"key", "k", "name", "Name", "Key", "K"} {
			if x, ok := eo.get(name); ok && x != nil {
				k = x
				break
			}
		}
		var val any
		for _, name := range []string{"value", "v", "Value", "V"} {
			if x, ok := eo.get(name); ok {
				val = x
				break
			}
		}
		switch kk := k.(type) {
		case string:
			o.set(kk, val)
		case float64:
			o.set(formatNumber(kk), val)
		case bool:
			o.set(strconv.FormatBool(kk), val)
		default:
			return nil, errorf("Cannot use %s as object key", describe(k))
		}
	}
	return o, nil
}

func flatten(v any, depth float64) (any, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errorf("Cannot flatten %s", describe(v))
	}
	out := []any{}
	for _, x := range arr {
		if sub, ok := x.([]any); ok && depth > 0 {
			f, _ := flatten(sub, depth-1)
			out = append(out, f.([]any)...)
			continue
		}
		out = append(out, x)
	}
	return out, nil
}

func tostring(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return toJSON(v)
}

func compileRe(re any, flags string) (*regexp.Regexp, error) {
	s, ok := re.(string)
	if !ok {
		return nil, errorf("%s cannot be matched, as it is not a string", describe(re))
	}
	prefix := ""
	for _, f := range flags {
		switch f {
		case 'i':
			prefix += "i"
		case 'x':
			s = regexp.MustCompile(`\s+|#.*`).ReplaceAllString(s, "")
		case 's':
			prefix += "s"
		case 'g', 'n', 'l', 'p':
		default:
			return nil, errorf("%s is not a valid modifier string", flags)
		}
	}
	if prefix != "" {
		s = "(?" + prefix + ")" + s
	}
	rx, err := regexp.Compile(s)
	if err != nil {
		return nil, errorf("%s (at offset 0) is not a valid regex: %v", re, err)
	}
	return rx, nil
}

// applyFormat is @name applied to v.
func applyFormat(name string, v any) (string, error) {
	switch name {
	case "text":
		return tostring(v), nil
	case "json":
		return toJSON(v), nil
	case "base64":
		return base64.StdEncoding.EncodeToString([]byte(tostring(v))), nil
	case "base64d":
		s := tostring(v)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			if b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "=")); err != nil {
				return "", errorf("%s is not valid base64 data", describe(v))
			}
		}
		return string(b), nil
	case "uri":
		return strings.ReplaceAll(url.QueryEscape(tostring(v)), "+", "%20"), nil
	case "html":
		return strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;", "'", "&#39;", `"`, "&quot;").Replace(tostring(v)), nil
	case "sh":
		quoteOne := func(x any) (string, error) {
			switch x := x.(type) {
			case string:
				return "'" + strings.ReplaceAll(x, "'", `'\''`) + "'", nil
			case []any, *Object:
				return "", errorf("%s can not be escaped for shell", describe(x))
			}
			return toJSON(x), nil
		}
		if arr, ok := v.([]any); ok {
			parts := make([]string, len(arr))
			for i, x := range arr {
				q, err := quoteOne(x)
				if err != nil {
					return "", err
				}
				parts[i] = q
			}
			return strings.Join(parts, " "), nil
		}
		return quoteOne(v)
	case "csv", "tsv":
		arr, ok := v.([]any)
		if !ok {
			return "", errorf("%s cannot be %s-formatted, only an array can be", describe(v), name)
		}
		parts := make([]string, len(arr))
		for i, x := range arr {
			switch x := x.(type) {
			case string:
				if name == "csv" {
					parts[i] = `"` + strings.ReplaceAll(x, `"`, `""`) + `"`
				} else {
					parts[i] = strings.NewReplacer(`\`, `\\`, "\t", `\t`, "\n", `\n`, "\r", `\r`).Replace(x)
				}
			case nil:
			case bool, float64:
				parts[i] = toJSON(x)
			default:
				return "", errorf("%s is not valid in a csv row", describe(x))
			}
		}
		sep := ","
		if name == "tsv" {
			sep = "\t"
		}
		return strings.Join(parts, sep), nil
	}
	return "", errorf("%s is not a valid format", name)
}

func init() {
	builtins = map[string]builtinFn{
		"empty/0":  func(*ctx, any, *scope, []node, emit) error { return nil },
		"not/0":    simple(func(v any) (any, error) { return !truthy(v), nil }),
		"length/0": simple(length),
		"utf8bytelength/0": simple(func(v any) (any, error) {
			s, err := str(v, "measured")
			return float64(len(s)), err
		}),
		"keys/0":          simple(func(v any) (any, error) { return keys(v, true) }),
		"keys_unsorted/0": simple(func(v any) (any, error) { return keys(v, false) }),
		"values/0": func(c *ctx, in any, s *scope, _ []node, out emit) error {
			if in == nil {
				return nil
			}
			return out(in)
		},
		"add/0":      simple(add),
		"has/1":      withArg(has),
		"in/1":       withArg(func(in, o any) (any, error) { return has(o, in) }),
		"contains/1": withArg(func(in, b any) (any, error) { return contains(in, b) }),
		"inside/1":   withArg(func(in, b any) (any, error) { return contains(b, in) }),
		"type/0":     simple(func(v any) (any, error) { return typeName(v), nil }),
		"tostring/0": simple(func(v any) (any, error) { return tostring(v), nil }),
		"tojson/0":   simple(func(v any) (any, error) { return toJSON(v), nil }),
		"ascii_downcase/0": simple(func(v any) (any, error) {
			s, err := str(v, "lowercased")
			return strings.ToLower(s), err
		}),
		"ascii_upcase/0": simple(func(v any) (any, error) {
			s, err := str(v, "uppercased")
			return strings.ToUpper(s), err
		}),
		"floor/0": math1(math.Floor),
		"ceil/0":  math1(math.Ceil),
		"round/0": math1(math.Round),
		"sqrt/0":  math1(math.Sqrt),
		"fabs/0":  math1(math.Abs),
		"abs/0":   math1(math.Abs),
		"log/0":   math1(math.Log),
		"exp/0":   math1(math.Exp),
		"log10/0": math1(math.Log10),
		"pow/2": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return args[1].eval(c, in, s, func(b any) error {
				return args[0].eval(c, in, s, func(a any) error {
					x, err := num(a, "")
					if err != nil {
						return err
					}
					y, err := num(b, "")
					if err != nil {
						return err
					}
					return out(math.Pow(x, y))
				})
			})
		},
		"infinite/0":   simple(func(any) (any, error) { return math.Inf(1), nil }),
		"nan/0":        simple(func(any) (any, error) { return math.NaN(), nil }),
		"isinfinite/0": simple(func(v any) (any, error) { f, err := num(v, ""); return math.IsInf(f, 0), err }),
		"isnan/0":      simple(func(v any) (any, error) { f, err := num(v, ""); return math.IsNaN(f), err }),
		"tonumber/0": simple(func(v any) (any, error) {
			switch v := v.(type) {
			case float64:
				return v, nil
			case string:
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return nil, errorf("Cannot parse '%s' as JSON", v)
				}
				return f, nil
			}
			return nil, errorf("%s cannot be parsed as a number", describe(v))
		}),
		"fromjson/0": simple(func(v any) (any, error) {
			s, err := str(v, "parsed")
			if err != nil {
				return nil, err
			}
			d := NewDecoder(s)
			x, ok, err := d.Next()
			if err != nil || !ok {
				return nil, errorf("%s (while parsing '%s')", err, s)
			}
			return x, nil
		}),
		"reverse/0": simple(func(v any) (any, error) {
			switch v := v.(type) {
			case nil:
				return []any{}, nil
			case string:
				rs := []rune(v)
				slices.Reverse(rs)
				return string(rs), nil
			case []any:
				out := slices.Clone(v)
				slices.Reverse(out)
				return out, nil
			}
			return nil, errorf("Cannot reverse %s", describe(v))
		}),
		"sort/0": simple(func(v any) (any, error) {
			arr, ok := v.([]any)
			if !ok {
				return nil, errorf("%s cannot be sorted, as it is not an array", describe(v))
			}
			out := slices.Clone(arr)
			slices.SortStableFunc(out, compare)
			return out, nil
		}),
		"sort_by/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			arr, _, err := sortBy(c, in, s, args[0])
			if err != nil {
				return err
			}
			return out(arr)
		},
		"group_by/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			arr, ks, err := sortBy(c, in, s, args[0])
			if err != nil {
				return err
			}
			groups := []any{}
			for i := range arr {
				if i == 0 || compare(ks[i], ks[i-1]) != 0 {
					groups = append(groups, []any{})
				}
				last := len(groups) - 1
				groups[last] = append(groups[last].([]any), arr[i])
			}
			return out(groups)
		},
		"unique/0": simple(func(v any) (any, error) {
			arr, ok := v.([]any)
			if !ok {
				return nil, errorf("%s cannot be sorted, as it is not an array", describe(v))
			}
			sorted := slices.Clone(arr)
			slices.SortStableFunc(sorted, compare)
			out := []any{}
			for i, x := range sorted {
				if i == 0 || compare(x, sorted[i-1]) != 0 {
					out = append(out, x)
				}
			}
			return out, nil
		}),
		"unique_by/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			arr, ks, err := sortBy(c, in, s, args[0])
			if err != nil {
				return err
			}
			res := []any{}
			for i := range arr {
				if i == 0 || compare(ks[i], ks[i-1]) != 0 {
					res = append(res, arr[i])
				}
			}
			return out(res)
		},
		"min/0": simple(func(v any) (any, error) { return extreme(v, -1) }),
		"max/0": simple(func(v any) (any, error) { return extreme(v, 1) }),
		"min_by/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			arr, _, err := sortBy(c, in, s, args[0])
			if err != nil || len(arr) == 0 {
				if err == nil {
					return out(nil)
				}
				return err
			}
			return out(arr[0])
		},
		"max_by/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			arr, _, err := sortBy(c, in, s, args[0])
			if err != nil || len(arr) == 0 {
				if err == nil {
					return out(nil)
				}
				return err
			}
			return out(arr[len(arr)-1])
		},
		"to_entries/0":   simple(toEntries),
		"from_entries/0": simple(fromEntries),
		"with_entries/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			es, err := toEntries(in)
			if err != nil {
				return err
			}
			var mapped []any
			for _, e := range es.([]any) {
				if err := args[0].eval(c, e, s, func(v any) error { mapped = append(mapped, v); return nil }); err != nil {
					return err
				}
			}
			if mapped == nil {
				mapped = []any{}
			}
			o, err := fromEntries(mapped)
			if err != nil {
				return err
			}
			return out(o)
		},
		"flatten/0": simple(func(v any) (any, error) { return flatten(v, 1e9) }),
		"flatten/1": withArg(func(in, d any) (any, error) {
			f, err := num(d, "")
			if err != nil || f < 0 {
				return nil, errorf("flatten depth must not be negative")
			}
			return flatten(in, f)
		}),
		"map/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			vs, err := values(in)
			if err != nil {
				return err
			}
			res := []any{}
			for _, v := range vs {
				c.env.Step()
				if err := args[0].eval(c, v, s, func(x any) error { res = append(res, x); return nil }); err != nil {
					return err
				}
			}
			return out(res)
		},
		"map_values/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			switch t := in.(type) {
			case []any:
				res := []any{}
				for _, v := range t {
					if err := first(c, v, s, args[0], func(x any) { res = append(res, x) }); err != nil {
						return err
					}
				}
				return out(res)
			case *Object:
				res := NewObject()
				for _, k := range t.keys {
					if err := first(c, t.m[k], s, args[0], func(x any) { res.set(k, x) }); err != nil {
						return err
					}
				}
				return out(res)
			}
			return errorf("Cannot iterate over %s", describe(in))
		},
		"select/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return args[0].eval(c, in, s, func(v any) error {
				if truthy(v) {
					return out(in)
				}
				return nil
			})
		},
		"recurse/0": func(c *ctx, in any, s *scope, _ []node, out emit) error {
			var walk func(v any) error
			walk = func(v any) error {
				c.env.Step()
				if err := out(v); err != nil {
					return err
				}
				switch v.(type) {
				case []any, *Object:
					return eachValue(c, v, func(_, x any) error { return walk(x) })
				}
				return nil
			}
			return walk(in)
		},
		"recurse/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			var walk func(v any, depth int) error
			walk = func(v any, depth int) error {
				c.env.Step()
				if depth > 10000 {
					return errorf("recurse: too deep")
				}
				if err := out(v); err != nil {
					return err
				}
				err := args[0].eval(c, v, s, func(x any) error { return walk(x, depth+1) })
				var je *Error
				if errors.As(err, &je) && strings.HasPrefix(je.Error(), "Cannot iterate over null") {
					return nil
				}
				return err
			}
			return walk(in, 0)
		},
		"error/0": func(_ *ctx, in any, _ *scope, _ []node, _ emit) error { return &Error{Value: in} },
		"error/1": func(c *ctx, in any, s *scope, args []node, _ emit) error {
			return args[0].eval(c, in, s, func(v any) error { return &Error{Value: v} })
		},
		"range/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return args[0].eval(c, in, s, func(n any) error {
				f, err := num(n, "")
				if err != nil {
					return err
				}
				for i := 0.0; i < f; i++ {
					c.env.Step()
					if err := out(i); err != nil {
						return err
					}
				}
				return nil
			})
		},
		"range/2": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return args[0].eval(c, in, s, func(a any) error {
				return args[1].eval(c, in, s, func(b any) error {
					x, err := num(a, "")
					if err != nil {
						return err
					}
					y, err := num(b, "")
					if err != nil {
						return err
					}
					for i := x; i < y; i++ {
						c.env.Step()
						if err := out(i); err != nil {
							return err
						}
					}
					return nil
				})
			})
		},
		"range/3": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return args[0].eval(c, in, s, func(a any) error {
				return args[1].eval(c, in, s, func(b any) error {
					return args[2].eval(c, in, s, func(st any) error {
						x, e1 := num(a, "")
						y, e2 := num(b, "")
						step, e3 := num(st, "")
						if err := errors.Join(e1, e2, e3); err != nil {
							return err
						}
						if step == 0 {
							return nil
						}
						for i := x; step > 0 && i < y || step < 0 && i > y; i += step {
							c.env.Step()
							if err := out(i); err != nil {
								return err
							}
						}
						return nil
					})
				})
			})
		},
		"first/0": simple(func(v any) (any, error) { return indexValue(v, 0.0) }),
		"last/0":  simple(func(v any) (any, error) { return indexValue(v, -1.0) }),
		"nth/1":   withArg(func(in, n any) (any, error) { return indexValue(in, n) }),
		"first/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			var v any
			got := false
			if err := first(c, in, s, args[0], func(x any) { v, got = x, true }); err != nil {
				return err
			}
			if got {
				return out(v)
			}
			return nil
		},
		"last/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			var v any
			got := false
			if err := args[0].eval(c, in, s, func(x any) error { v, got = x, true; return nil }); err != nil {
				return err
			}
			if got {
				return out(v)
			}
			return nil
		},
		"limit/2": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return args[0].eval(c, in, s, func(n any) error {
				f, err := num(n, "")
				if err != nil {
					return err
				}
				if f <= 0 {
					return nil
				}
				count := 0
				stop := errors.New("limit")
				err = args[1].eval(c, in, s, func(x any) error {
					if err := out(x); err != nil {
						return err
					}
					if count++; float64(count) >= f {
						return stop
					}
					return nil
				})
				if errors.Is(err, stop) {
					return nil
				}
				return err
			})
		},
		"isempty/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			got := false
			if err := first(c, in, s, args[0], func(any) { got = true }); err != nil {
				return err
			}
			return out(!got)
		},
		"any/0": simple(func(v any) (any, error) {
			vs, err := values(v)
			for _, x := range vs {
				if truthy(x) {
					return true, nil
				}
			}
			return false, err
		}),
		"all/0": simple(func(v any) (any, error) {
			vs, err := values(v)
			for _, x := range vs {
				if !truthy(x) {
					return false, nil
				}
			}
			return true, err
		}),
		"any/1": anyAll(true),
		"all/1": anyAll(false),
		"join/1": withArg(func(in, sep any) (any, error) {
			vs, err := values(in)
			if err != nil {
				return nil, err
			}
			sp, err := str(sep, "joined")
			if err != nil {
				return nil, err
			}
			parts := make([]string, len(vs))
			for i, v := range vs {
				switch v := v.(type) {
				case nil:
				case string:
					parts[i] = v
				case float64, bool:
					parts[i] = toJSON(v)
				default:
					return nil, errorf("Cannot join with %s", typeName(v))
				}
			}
			return strings.Join(parts, sp), nil
		}),
		"split/1": withArg(func(in, sep any) (any, error) {
			s, err := str(in, "split")
			if err != nil {
				return nil, err
			}
			sp, err := str(sep, "split")
			if err != nil {
				return nil, err
			}
			return splitString(s, sp), nil
		}),
		"split/2": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return regexArgs(c, in, s, args, func(str string, rx *regexp.Regexp) error {
				return out(strs(rx.Split(str, -1)))
			})
		},
		"ltrimstr/1": withArg(func(in, p any) (any, error) {
			s, ok1 := in.(string)
			ps, ok2 := p.(string)
			if ok1 && ok2 {
				return strings.TrimPrefix(s, ps), nil
			}
			return in, nil
		}),
		"rtrimstr/1": withArg(func(in, p any) (any, error) {
			s, ok1 := in.(string)
			ps, ok2 := p.(string)
			if ok1 && ok2 {
				return strings.TrimSuffix(s, ps), nil
			}
			return in, nil
		}),
		"startswith/1": withArg(func(in, p any) (any, error) {
			s, ok1 := in.(string)
			ps, ok2 := p.(string)
			if !ok1 || !ok2 {
				return nil, errorf("startswith() requires string inputs")
			}
			return strings.HasPrefix(s, ps), nil
		}),
		"endswith/1": withArg(func(in, p any) (any, error) {
			s, ok1 := in.(string)
			ps, ok2 := p.(string)
			if !ok1 || !ok2 {
				return nil, errorf("endswith() requires string inputs")
			}
			return strings.HasSuffix(s, ps), nil
		}),
		"trim/0":  simple(func(v any) (any, error) { s, err := str(v, "trimmed"); return strings.TrimSpace(s), err }),
		"ltrim/0": simple(func(v any) (any, error) { s, err := str(v, "trimmed"); return strings.TrimLeft(s, " \t\n\r"), err }),
		"rtrim/0": simple(func(v any) (any, error) { s, err := str(v, "trimmed"); return strings.TrimRight(s, " \t\n\r"), err }),
		"explode/0": simple(func(v any) (any, error) {
			s, err := str(v, "exploded")
			out := []any{}
			for _, r := range s {
				out = append(out, float64(r))
			}
			return out, err
		}),
		"implode/0": simple(func(v any) (any, error) {
			arr, ok := v.([]any)
			if !ok {
				return nil, errorf("Cannot implode %s", describe(v))
			}
			var b strings.Builder
			for _, x := range arr {
				f, err := num(x, "")
				if err != nil {
					return nil, err
				}
				b.WriteRune(rune(f))
			}
			return b.String(), nil
		}),
		"index/1":   withArg(func(in, x any) (any, error) { return firstIndex(indicesOf(in, x), false), nil }),
		"rindex/1":  withArg(func(in, x any) (any, error) { return firstIndex(indicesOf(in, x), true), nil }),
		"indices/1": withArg(func(in, x any) (any, error) { return indicesOf(in, x), nil }),
		"test/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return regexArgs(c, in, s, args, func(str string, rx *regexp.Regexp) error { return out(rx.MatchString(str)) })
		},
		"test/2": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return regexArgs(c, in, s, args, func(str string, rx *regexp.Regexp) error { return out(rx.MatchString(str)) })
		},
		"sub/2":  substitute(false),
		"sub/3":  substitute(false),
		"gsub/2": substitute(true),
		"gsub/3": substitute(true),
		"getpath/1": withArg(func(in, p any) (any, error) {
			ps, ok := p.([]any)
			if !ok {
				return nil, errorf("Path must be specified as an array")
			}
			v, err := getPath(in, ps)
			if err != nil {
				return nil, nil
			}
			return v, nil
		}),
		"setpath/2": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return args[1].eval(c, in, s, func(x any) error {
				return args[0].eval(c, in, s, func(p any) error {
					ps, ok := p.([]any)
					if !ok {
						return errorf("Path must be specified as an array")
					}
					v, err := setPath(in, ps, x)
					if err != nil {
						return err
					}
					return out(v)
				})
			})
		},
		"delpaths/1": withArg(func(in, p any) (any, error) {
			ps, ok := p.([]any)
			if !ok {
				return nil, errorf("Paths must be specified as an array")
			}
			var paths [][]any
			for _, x := range ps {
				pa, ok := x.([]any)
				if !ok {
					return nil, errorf("Path must be specified as an array")
				}
				paths = append(paths, pa)
			}
			return deletePaths(in, paths)
		}),
		"del/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			ap, ok := args[0].(pather)
			if !ok {
				return errorf("Invalid path expression")
			}
			var paths [][]any
			if err := ap.paths(c, in, s, nil, func(p []any, _ any) error { paths = append(paths, p); return nil }); err != nil {
				return err
			}
			v, err := deletePaths(in, paths)
			if err != nil {
				return err
			}
			return out(v)
		},
		"paths/0": func(c *ctx, in any, s *scope, _ []node, out emit) error {
			return allPaths(c, in, nil, func(p []any, _ any) error {
				if len(p) == 0 {
					return nil
				}
				return out(p)
			})
		},
		"paths/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return allPaths(c, in, nil, func(p []any, v any) error {
				if len(p) == 0 {
					return nil
				}
				return args[0].eval(c, v, s, func(ok any) error {
					if truthy(ok) {
						return out(p)
					}
					return nil
				})
			})
		},
		"leaf_paths/0": func(c *ctx, in any, s *scope, _ []node, out emit) error {
			// paths(scalars): select keeps what scalars outputs when it is
			// truthy, so null and false leaves are left out, as in jq.
			return allPaths(c, in, nil, func(p []any, v any) error {
				switch v.(type) {
				case []any, *Object:
					return nil
				}
				if !truthy(v) {
					return nil
				}
				if len(p) == 0 {
					return nil
				}
				return out(p)
			})
		},
		"path/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			ap, ok := args[0].(pather)
			if !ok {
				return errorf("Invalid path expression")
			}
			return ap.paths(c, in, s, nil, func(p []any, _ any) error {
				if p == nil {
					p = []any{}
				}
				return out(p)
			})
		},
		"walk/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			var walk func(v any) (any, error)
			walk = func(v any) (any, error) {
				c.env.Step()
				switch t := v.(type) {
				case []any:
					nv := make([]any, len(t))
					for i, x := range t {
						y, err := walk(x)
						if err != nil {
							return nil, err
						}
						nv[i] = y
					}
					v = nv
				case *Object:
					o := NewObject()
					for _, k := range t.keys {
						y, err := walk(t.m[k])
						if err != nil {
							return nil, err
						}
						o.set(k, y)
					}
					v = o
				}
				var res any
				err := first(c, v, s, args[0], func(x any) { res = x })
				return res, err
			}
			v, err := walk(in)
			if err != nil {
				return err
			}
			return out(v)
		},
		"transpose/0": simple(func(v any) (any, error) {
			rows, err := values(v)
			if err != nil {
				return nil, err
			}
			n := 0
			for _, r := range rows {
				if ra, ok := r.([]any); ok {
					n = max(n, len(ra))
				}
			}
			out := make([]any, n)
			for i := range out {
				col := make([]any, len(rows))
				for j, r := range rows {
					if ra, ok := r.([]any); ok && i < len(ra) {
						col[j] = ra[i]
					}
				}
				out[i] = col
			}
			return out, nil
		}),
		"env/0": func(_ *ctx, _ any, s *scope, _ []node, out emit) error {
			v, _ := s.lookup("ENV")
			return out(v)
		},
		"now/0": simple(func(any) (any, error) { return float64(time.Now().UnixMilli()) / 1000, nil }),
		"todate/0": simple(func(v any) (any, error) {
			f, err := num(v, "")
			return time.Unix(int64(f), 0).UTC().Format("2006-01-02T15:04:05Z"), err
		}),
		"fromdate/0": simple(func(v any) (any, error) {
			s, err := str(v, "parsed as a date")
			if err != nil {
				return nil, err
			}
			t, err := time.Parse("2006-01-02T15:04:05Z", s)
			if err != nil {
				return nil, errorf("date \"%s\" does not match format \"%%Y-%%m-%%dT%%H:%%M:%%SZ\"", s)
			}
			return float64(t.Unix()), nil
		}),
		"ascii/0":    simple(func(v any) (any, error) { f, err := num(v, ""); return string(rune(f)), err }),
		"arrays/0":   typeFilter("array"),
		"objects/0":  typeFilter("object"),
		"strings/0":  typeFilter("string"),
		"numbers/0":  typeFilter("number"),
		"booleans/0": typeFilter("boolean"),
		"nulls/0":    typeFilter("null"),
		"iterables/0": func(_ *ctx, in any, _ *scope, _ []node, out emit) error {
			switch in.(type) {
			case []any, *Object:
				return out(in)
			}
			return nil
		},
		"scalars/0": func(_ *ctx, in any, _ *scope, _ []node, out emit) error {
			switch in.(type) {
			case []any, *Object:
				return nil
			}
			return out(in)
		},
		"splits/1": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return regexArgs(c, in, s, args, func(str string, rx *regexp.Regexp) error {
				for _, part := range rx.Split(str, -1) {
					if err := out(part); err != nil {
						return err
					}
				}
				return nil
			})
		},
		"until/2": func(c *ctx, in any, s *scope, args []node, out emit) error {
			v := in
			for {
				c.env.Step()
				var done bool
				if err := first(c, v, s, args[0], func(x any) { done = truthy(x) }); err != nil {
					return err
				}
				if done {
					return out(v)
				}
				var next any
				if err := first(c, v, s, args[1], func(x any) { next = x }); err != nil {
					return err
				}
				v = next
			}
		},
		"while/2": func(c *ctx, in any, s *scope, args []node, out emit) error {
			v := in
			for {
				c.env.Step()
				var ok bool
				if err := first(c, v, s, args[0], func(x any) { ok = truthy(x) }); err != nil {
					return err
				}
				if !ok {
					return nil
				}
				if err := out(v); err != nil {
					return err
				}
				if err := first(c, v, s, args[1], func(x any) { v = x }); err != nil {
					return err
				}
			}
		},
		"input/0":  func(*ctx, any, *scope, []node, emit) error { return errorf("No more inputs") },
		"inputs/0": func(*ctx, any, *scope, []node, emit) error { return nil },
		"halt/0":   func(*ctx, any, *scope, []node, emit) error { return ErrHalt },
		"halt_error/0": func(_ *ctx, in any, _ *scope, _ []node, _ emit) error {
			return &HaltError{v: in, Code: 5}
		},
		"halt_error/1": func(c *ctx, in any, s *scope, args []node, _ emit) error {
			return args[0].eval(c, in, s, func(code any) error {
				f, _ := code.(float64)
				return &HaltError{v: in, Code: int(f)}
			})
		},
		"builtins/0": simple(func(any) (any, error) {
			var names []string
			for k := range builtins {
				names = append(names, k)
			}
			sort.Strings(names)
			return strs(names), nil
		}),
		"splits/2": func(c *ctx, in any, s *scope, args []node, out emit) error {
			return regexArgs(c, in, s, args, func(str string, rx *regexp.Regexp) error {
				for _, part := range rx.Split(str, -1) {
					if err := out(part); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}

// ErrHalt is halt: the program stops, successfully.
var ErrHalt = errors.New("halt")

// HaltError is halt_error: the program stops with its input on stderr
// and Code as the status.
type HaltError struct {
	v    any
	Code int
}

func (h *HaltError) Error() string { return tostring(h.v) }

func typeFilter(name string) builtinFn {
	return func(_ *ctx, in any, _ *scope, _ []node, out emit) error {
		if typeName(in) == name {
			return out(in)
		}
		return nil
	}
}

// first calls f with the first output of arg, if any.
func first(c *ctx, in any, s *scope, arg node, f func(any)) error {
	err := arg.eval(c, in, s, func(x any) error {
		f(x)
		return errStop
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

func firstIndex(idx any, last bool) any {
	arr, ok := idx.([]any)
	if !ok || len(arr) == 0 {
		return nil
	}
	if last {
		return arr[len(arr)-1]
	}
	return arr[0]
}

func extreme(v any, sign int) (any, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errorf("%s cannot be sorted, as it is not an array", describe(v))
	}
	if len(arr) == 0 {
		return nil, nil
	}
	best := arr[0]
	for _, x := range arr[1:] {
		if c := compare(x, best); sign < 0 && c < 0 || sign > 0 && c >= 0 {
			best = x
		}
	}
	return best, nil
}

func anyAll(isAny bool) builtinFn {
	return func(c *ctx, in any, s *scope, args []node, out emit) error {
		vs, err := values(in)
		if err != nil {
			return err
		}
		for _, v := range vs {
			var t bool
			if err := first(c, v, s, args[0], func(x any) { t = truthy(x) }); err != nil {
				return err
			}
			if t == isAny {
				return out(isAny)
			}
		}
		return out(!isAny)
	}
}

// regexArgs evaluates a regex builtin's arguments: the regex, and flags.
func regexArgs(c *ctx, in any, s *scope, args []node, f func(str string, rx *regexp.Regexp) error) error {
	str, ok := in.(string)
	if !ok {
		return errorf("%s cannot be matched, as it is not a string", describe(in))
	}
	flagsNode := node(&literal{v: ""})
	if len(args) > 1 {
		flagsNode = args[1]
	}
	return flagsNode.eval(c, in, s, func(fl any) error {
		flags, _ := fl.(string)
		return args[0].eval(c, in, s, func(re any) error {
			rx, err := compileRe(re, flags)
			if err != nil {
				return err
			}
			return f(str, rx)
		})
	})
}

// substitute is sub and gsub: the replacement is a filter evaluated with
// the named captures as its input object.
func substitute(global bool) builtinFn {
	return func(c *ctx, in any, s *scope, args []node, out emit) error {
		str, ok := in.(string)
		if !ok {
			return errorf("%s cannot be matched, as it is not a string", describe(in))
		}
		flags := ""
		if len(args) > 2 {
			if err := first(c, in, s, args[2], func(x any) { flags, _ = x.(string) }); err != nil {
				return err
			}
		}
		if strings.Contains(flags, "g") {
			global = true
		}
		return args[0].eval(c, in, s, func(re any) error {
			rx, err := compileRe(re, flags)
			if err != nil {
				return err
			}
			matches := rx.FindAllStringSubmatchIndex(str, -1)
			if !global && len(matches) > 1 {
				matches = matches[:1]
			}
			var b strings.Builder
			last := 0
			for _, m := range matches {
				caps := NewObject()
				for i, name := range rx.SubexpNames() {
					if name != "" && m[2*i] >= 0 {
						caps.set(name, str[m[2*i]:m[2*i+1]])
					} else if name != "" {
						caps.set(name, nil)
					}
				}
				var repl string
				if err := first(c, caps, s, args[1], func(x any) { repl = tostring(x) }); err != nil {
					return err
				}
				b.WriteString(str[last:m[0]])
				b.WriteString(repl)
				last = m[1]
			}
			b.WriteString(str[last:])
			return out(b.String())
		})
	}
}

// allPaths walks every path of v.
func allPaths(c *ctx, v any, path []any, f func(p []any, v any) error) error {
	c.env.Step()
	if err := f(path, v); err != nil {
		return err
	}
	switch v.(type) {
	case []any, *Object:
		return eachValue(c, v, func(k, x any) error { return allPaths(c, x, appendPath(path, k), f) })
	}
	return nil
}
