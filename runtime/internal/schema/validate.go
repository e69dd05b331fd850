package schema

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Problem is one way a JSON value breaks a schema: where, as a JSON
// pointer (RFC 6901; "" is the whole value), and what is wrong there.
type Problem struct {
	Pointer string `json:"pointer"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	if p.Pointer == "" {
		return "(the value): " + p.Message
	}
	return p.Pointer + ": " + p.Message
}

// Validator checks JSON values against one JSON Schema, listing every
// problem it finds rather than the first. It is written for the schemas
// For generates, and for the common hand-written ones: type, enum, const,
// properties, required, additionalProperties, minProperties,
// maxProperties, items, prefixItems, minItems, maxItems, uniqueItems,
// minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf,
// minLength, maxLength, pattern, format date-time, contentEncoding base64,
// allOf, anyOf, oneOf, not, and $ref into the document ($defs,
// definitions). Other keywords are annotations to it.
//
// Numbers are held to what Go decodes, where JSON Schema is laxer: an
// integer is a literal with no fraction or exponent that fits 64 bits
// (signed, or unsigned when the schema's minimum is 0 or more), and a
// number must fit a float64. So a value For(t) accepts is one Decode
// decodes into t, with one exception: the members of types that decode
// themselves (json.Unmarshaler, encoding.TextUnmarshaler other than
// time.Time, fields with the ",string" option), whose schema says only
// their JSON type.
type Validator struct {
	root any
}

// Compile parses schema. It fails when schema is not JSON or not a schema
// (an object or a boolean).
func Compile(schema json.RawMessage) (*Validator, error) {
	root, err := decodeValue(schema)
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	switch root.(type) {
	case map[string]any, bool:
	default:
		return nil, errors.New("schema: not an object or a boolean")
	}
	return &Validator{root: root}, nil
}

// Validate checks the JSON text data. Text that is not one JSON value is
// one problem at "".
func (v *Validator) Validate(data []byte) []Problem {
	x, err := decodeValue(data)
	if err != nil {
		return []Problem{{Pointer: "", Message: err.Error()}}
	}
	return v.ValidateValue(x)
}

// ValidateValue checks x, a value decoded from JSON with json.Number for
// numbers (as decodeValue does).
func (v *Validator) ValidateValue(x any) []Problem {
	c := &checker{root: v.root}
	c.check(v.root, x, "", 0)
	return c.problems
}

// decodeValue decodes one JSON value with numbers as json.Number.
func decodeValue(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not one JSON value: data after the value")
	}
	if ptr, dup := duplicateMember(data); dup {
		return nil, fmt.Errorf("member %s appears twice", ptr)
	}
	return x, nil
}

type checker struct {
	root     any
	problems []Problem
}

// maxDepth bounds $ref recursion: a schema referring to itself with no
// progress in the value would not end otherwise.
const maxDepth = 64

// add is not inlined: a problem is the cold path, and inlined at its 26
// call sites it was 4 KB gzip of the module.
//
//go:noinline
func (c *checker) add(ptr, format string, args ...any) {
	c.problems = append(c.problems, Problem{Pointer: ptr, Message: fmt.Sprintf(format, args...)})
}

// sub checks x against s on its own and returns its problems, leaving
// c's alone: for anyOf, oneOf and not.
func (c *checker) sub(s, x any, ptr string, depth int) []Problem {
	d := &checker{root: c.root}
	d.check(s, x, ptr, depth)
	return d.problems
}

func (c *checker) check(schema, x any, ptr string, depth int) {
	switch s := schema.(type) {
	case bool:
		if !s {
			c.add(ptr, "no value is allowed here")
		}
		return
	case map[string]any:
		c.object(s, x, ptr, depth)
	}
}

func (c *checker) object(s map[string]any, x any, ptr string, depth int) {
	if ref, ok := s["$ref"].(string); ok {
		target, err := c.resolve(ref)
		switch {
		case err != nil:
			c.add(ptr, "the schema's %s", err)
		case depth >= maxDepth:
			c.add(ptr, "the schema nests deeper than %d references", maxDepth)
		default:
			c.check(target, x, ptr, depth+1)
		}
	}
	if t, ok := s["type"]; ok && !c.typeOK(t, s, x, ptr) {
		return // the other keywords would only repeat it
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(v any) bool { return equalJSON(v, x) }) {
		c.add(ptr, "want one of %s", jsonList(e))
	}
	if cv, ok := s["const"]; ok && !equalJSON(cv, x) {
		c.add(ptr, "want %s", jsonText(cv))
	}
	switch x := x.(type) {
	case map[string]any:
		c.members(s, x, ptr, depth)
	case []any:
		c.items(s, x, ptr, depth)
	case string:
		c.str(s, x, ptr)
	case json.Number:
		c.num(s, x, ptr)
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			c.check(sub, x, ptr, depth)
		}
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		c.alternatives(anyOf, x, ptr, depth, false)
	}
	if oneOf, ok := s["oneOf"].([]any); ok {
		c.alternatives(oneOf, x, ptr, depth, true)
	}
	if not, ok := s["not"]; ok && len(c.sub(not, x, ptr, depth)) == 0 {
		c.add(ptr, "this value is not allowed here")
	}
}

// alternatives checks anyOf (one=false) or oneOf. When no branch fits, the
// problems reported are those of the branch whose type the value has
// (null aside: the nullable wrapper For writes), or of the one closest.
func (c *checker) alternatives(branches []any, x any, ptr string, depth int, one bool) {
	var best []Problem
	matched := 0
	for _, b := range branches {
		ps := c.sub(b, x, ptr, depth)
		if len(ps) == 0 {
			matched++
			continue
		}
		// A branch of another type is the worst fit; then the fewest problems.
		if best == nil || typeMismatch(best) && !typeMismatch(ps) || typeMismatch(best) == typeMismatch(ps) && len(ps) < len(best) {
			best = ps
		}
	}
	switch {
	case matched == 0:
		c.problems = append(c.problems, best...)
	case one && matched > 1:
		c.add(ptr, "the value fits %d of the alternatives, want exactly one", matched)
	}
}

// typeMismatch reports whether ps is a branch's single wrong-type problem.
func typeMismatch(ps []Problem) bool {
	return len(ps) == 1 && strings.HasPrefix(ps[0].Message, "want type ")
}

// resolve follows a $ref within the document: "#", "#/$defs/Name", any
// JSON pointer after "#".
func (c *checker) resolve(ref string) (any, error) {
	p, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("$ref %q is outside the document", ref)
	}
	cur := c.root
	if p == "" {
		return cur, nil
	}
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("$ref %q is not a JSON pointer", ref)
	}
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch v := cur.(type) {
		case map[string]any:
			if cur, ok = v[tok]; !ok {
				return nil, fmt.Errorf("$ref %q names nothing", ref)
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, fmt.Errorf("$ref %q names nothing", ref)
			}
			cur = v[i]
		default:
			return nil, fmt.Errorf("$ref %q names nothing", ref)
		}
	}
	return cur, nil
}

// typeOK checks the type keyword (one type or a list).
func (c *checker) typeOK(t any, s map[string]any, x any, ptr string) bool {
	var types []string
	switch t := t.(type) {
	case string:
		types = []string{t}
	case []any:
		for _, e := range t {
			if str, ok := e.(string); ok {
				types = append(types, str)
			}
		}
	default:
		return true
	}
	got := jsonKind(x)
	for _, want := range types {
		switch {
		case want == got, want == "number" && got == "integer":
			if got != "null" && want != "integer" {
				if n, ok := x.(json.Number); ok && !fitsFloat(n) {
					c.add(ptr, "the number %s is out of range", n)
					return false
				}
			}
			if want == "integer" {
				if msg := integerProblem(x.(json.Number), s); msg != "" {
					c.add(ptr, "%s", msg)
					return false
				}
			}
			return true
		case want == "integer" && got == "number":
			c.add(ptr, "want type integer, got the number %s", x)
			return false
		}
	}
	c.add(ptr, "want type %s, got %s", strings.Join(types, " or "), describe(x))
	return false
}

// jsonKind names x's JSON type, "integer" for a number literal with no
// fraction or exponent.
func jsonKind(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "number"
		}
		return "integer"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func describe(x any) string {
	switch k := jsonKind(x); k {
	case "null":
		return "null"
	case "integer", "number":
		return "the number " + string(x.(json.Number))
	case "string", "boolean":
		return k + " " + jsonText(x)
	default:
		return "an " + k
	}
}

func fitsFloat(n json.Number) bool {
	_, err := strconv.ParseFloat(string(n), 64)
	return err == nil
}

// integerProblem says why the integer literal n does not fit 64 bits, as
// Go decodes integers: signed, or unsigned when s's minimum is 0 or more.
func integerProblem(n json.Number, s map[string]any) string {
	if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return ""
	}
	if lo, ok := s["minimum"].(json.Number); ok {
		if f, err := lo.Float64(); err == nil && f >= 0 {
			if _, err := strconv.ParseUint(string(n), 10, 64); err == nil {
				return ""
			}
		}
	}
	return "the integer " + string(n) + " does not fit 64 bits"
}

func (c *checker) members(s map[string]any, x map[string]any, ptr string, depth int) {
	props, _ := s["properties"].(map[string]any)
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			if name, ok := r.(string); ok {
				if _, present := x[name]; !present {
					c.add(ptr, "missing required member %q", name)
				}
			}
		}
	}
	if n, ok := count64(s["minProperties"]); ok && int64(len(x)) < n {
		c.add(ptr, "want at least %d members, got %d", n, len(x))
	}
	if n, ok := count64(s["maxProperties"]); ok && int64(len(x)) > n {
		c.add(ptr, "want at most %d members, got %d", n, len(x))
	}
	additional, hasAdditional := s["additionalProperties"]
	for _, k := range sortedKeys(x) {
		child := ptr + "/" + escapePointer(k)
		if ps, ok := props[k]; ok {
			c.check(ps, x[k], child, depth)
			continue
		}
		if !hasAdditional {
			continue
		}
		if b, ok := additional.(bool); ok && !b {
			c.add(child, "unknown member: allowed are %s", memberList(props))
			continue
		}
		c.check(additional, x[k], child, depth)
	}
}

func memberList(props map[string]any) string {
	if len(props) == 0 {
		return "none"
	}
	names := sortedKeys(props)
	for i, n := range names {
		names[i] = strconv.Quote(n)
	}
	return strings.Join(names, ", ")
}

func (c *checker) items(s map[string]any, x []any, ptr string, depth int) {
	if n, ok := count64(s["minItems"]); ok && int64(len(x)) < n {
		c.add(ptr, "want at least %d items, got %d", n, len(x))
	}
	if n, ok := count64(s["maxItems"]); ok && int64(len(x)) > n {
		c.add(ptr, "want at most %d items, got %d", n, len(x))
	}
	if u, _ := s["uniqueItems"].(bool); u {
		for i := range x {
			for j := range i {
				if equalJSON(x[i], x[j]) {
					c.add(ptr+"/"+strconv.Itoa(i), "a repeat of item %d: want unique items", j)
				}
			}
		}
	}
	prefix, _ := s["prefixItems"].([]any)
	items, hasItems := s["items"]
	for i, item := range x {
		child := ptr + "/" + strconv.Itoa(i)
		switch {
		case i < len(prefix):
			c.check(prefix[i], item, child, depth)
		case hasItems:
			c.check(items, item, child, depth)
		}
	}
}

func (c *checker) str(s map[string]any, x string, ptr string) {
	n := int64(utf8.RuneCountInString(x))
	if m, ok := count64(s["minLength"]); ok && n < m {
		c.add(ptr, "want at least %d characters, got %d", m, n)
	}
	if m, ok := count64(s["maxLength"]); ok && n > m {
		c.add(ptr, "want at most %d characters, got %d", m, n)
	}
	if p, ok := s["pattern"].(string); ok {
		re, err := compiled(p)
		switch {
		case err != nil:
			c.add(ptr, "the schema's pattern %q does not compile: %v", p, err)
		case !re.MatchString(x):
			c.add(ptr, "want a string matching %q", p)
		}
	}
	if f, _ := s["format"].(string); f == "date-time" {
		var t time.Time
		if err := t.UnmarshalJSON([]byte(strconv.Quote(x))); err != nil {
			c.add(ptr, "want an RFC 3339 date and time such as 2025-01-02T15:04:05Z, got %q", x)
		}
	}
	if e, _ := s["contentEncoding"].(string); e == "base64" {
		if _, err := base64.StdEncoding.DecodeString(x); err != nil {
			c.add(ptr, "want base64 (standard, padded)")
		}
	}
}

func (c *checker) num(s map[string]any, x json.Number, ptr string) {
	f, err := x.Float64()
	if err != nil {
		return // the type check reports it
	}
	bound := func(k string) *float64 {
		if b, ok := s[k].(json.Number); ok {
			if v, err := b.Float64(); err == nil {
				return &v
			}
		}
		return nil
	}
	lo, hi := bound("minimum"), bound("maximum")
	xlo, xhi := bound("exclusiveMinimum"), bound("exclusiveMaximum")
	if b, _ := s["exclusiveMinimum"].(bool); b { // draft 4
		xlo, lo = lo, nil
	}
	if b, _ := s["exclusiveMaximum"].(bool); b {
		xhi, hi = hi, nil
	}
	if msg := checkBounds(f, lo, hi, xlo, xhi); msg != "" {
		c.add(ptr, "%s, got %s", msg, x)
	}
	if m := bound("multipleOf"); m != nil && *m > 0 {
		if q := f / *m; math.Abs(q-math.Round(q)) > 1e-9 {
			c.add(ptr, "want a multiple of %s, got %s", fmtNum(*m), x)
		}
	}
}

// count64 reads a non-negative count keyword.
func count64(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil && i >= 0
}

// equalJSON reports whether two JSON values are equal: numbers by value,
// objects and arrays member by member. Either side may hold json.Number or
// float64 numbers (Rules' enums are float64).
func equalJSON(a, b any) bool {
	if fa, ok := asFloat(a); ok {
		fb, ok := asFloat(b)
		return ok && fa == fb
	}
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bv, ok := b.(bool)
		return ok && a == bv
	case string:
		bv, ok := b.(string)
		return ok && a == bv
	case []any:
		bv, ok := b.([]any)
		if !ok || len(a) != len(bv) {
			return false
		}
		for i := range a {
			if !equalJSON(a[i], bv[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok || len(a) != len(bv) {
			return false
		}
		for k, v := range a {
			w, ok := bv[k]
			if !ok || !equalJSON(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case int:
		return float64(v), true
	}
	return 0, false
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func jsonList(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = jsonText(v)
	}
	return strings.Join(parts, ", ")
}

// escapePointer escapes a member name as a JSON pointer token.
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// duplicateMember finds an object member named twice in data (valid
// JSON): the generic value keeps the last, while encoding/json decodes
// both into a struct or map, so both decoders refuse such an object. It
// returns the JSON pointer of the second occurrence.
func duplicateMember(data []byte) (string, bool) {
	type frame struct {
		object bool
		keys   map[string]bool
		index  int    // the next item of an array
		key    string // the member being read
		path   string
	}
	var stack []frame
	afterKey := false // the string just read is a member name
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := &stack[len(stack)-1]
		if f.object {
			return f.path + "/" + escapePointer(f.key)
		}
		p := f.path + "/" + strconv.Itoa(f.index)
		f.index++
		return p
	}
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			p := child()
			stack = append(stack, frame{object: c == '{', path: p})
			afterKey = false
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			afterKey = false
		case ':':
			afterKey = true
		case '"':
			start := i
			for i++; data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
			f := (*frame)(nil)
			if len(stack) > 0 {
				f = &stack[len(stack)-1]
			}
			if f != nil && f.object && !afterKey {
				raw := data[start : i+1]
				name := string(raw[1 : len(raw)-1])
				if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
					_ = json.Unmarshal(raw, &name)
				}
				if f.keys == nil {
					f.keys = map[string]bool{}
				}
				if f.keys[name] {
					return f.path + "/" + escapePointer(name), true
				}
				f.keys[name] = true
				f.key = name
				continue
			}
			child()
		default:
			if c > ' ' && len(stack) > 0 && (afterKey || !stack[len(stack)-1].object) && (i == 0 || !isScalarByte(data[i-1])) {
				child() // a number, true, false or null begins
			}
		}
	}
	return "", false
}

func isScalarByte(c byte) bool {
	return c > ' ' && c != ',' && c != ':' && c != '[' && c != '{' && c != '"' && c != ']' && c != '}'
}
