package modeltest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Value returns a JSON value that schema accepts, the same one each time:
// what the schema model sends as a tool's arguments. It follows what
// generated schemas use (invopop/jsonschema's included): type (one or a
// list), const, enum, $ref into the document ($defs, definitions),
// allOf, anyOf, oneOf, properties (every one, required or not, to the
// depth where only required ones are kept), additionalProperties,
// minProperties, items, prefixItems, minItems, maxItems, uniqueItems,
// minLength, maxLength, pattern, format (date-time, date, time, email,
// uri, uuid, hostname, ipv4, ipv6, duration), minimum, maximum, their
// exclusive forms (draft 4's booleans too) and multipleOf. It fails on a
// schema it cannot satisfy, such as false or a required recursion.
func Value(schema json.RawMessage) (json.RawMessage, error) {
	var root any
	if err := json.Unmarshal(schema, &root); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	g := gen{root: root}
	v, err := g.value(root, 0, 0)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

type gen struct {
	root  any
	steps int
}

// maxSteps bounds the work on one schema: alternatives that fail deep
// down could otherwise take exponential time.
const maxSteps = 100_000

// optionalDepth is the nesting beyond which optional properties are left
// out, so recursive types end.
const optionalDepth = 4

// maxDepth is where generation gives up: a recursion that every level
// requires.
const maxDepth = 48

var errRecursion = errors.New("the schema requires an infinitely deep value")

// value generates for s at depth; variant varies the value (for
// uniqueItems), 0 being the plainest.
func (g *gen) value(s any, depth, variant int) (any, error) {
	if depth > maxDepth {
		return nil, errRecursion
	}
	if g.steps++; g.steps > maxSteps {
		return nil, errors.New("the schema takes too long to satisfy")
	}
	switch s := s.(type) {
	case bool:
		if !s {
			return nil, errors.New("the schema false accepts nothing")
		}
		return variantString("test", variant), nil
	case map[string]any:
		return g.object(s, depth, variant)
	}
	return nil, fmt.Errorf("a schema must be an object or a boolean, not %T", s)
}

func (g *gen) object(s map[string]any, depth, variant int) (any, error) {
	if ref, ok := s["$ref"].(string); ok {
		target, err := g.resolve(ref)
		if err != nil {
			return nil, err
		}
		if len(s) == 1 {
			return g.value(target, depth+1, variant)
		}
		// Siblings of $ref (2019-09 and later) apply too: merge them.
		merged := map[string]any{}
		if tm, ok := target.(map[string]any); ok {
			for k, v := range tm {
				merged[k] = v
			}
		}
		for k, v := range s {
			if k != "$ref" {
				merged[k] = v
			}
		}
		return g.value(merged, depth+1, variant)
	}
	if c, ok := s["const"]; ok {
		return c, nil
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		return enum[variant%len(enum)], nil
	}
	if all, ok := s["allOf"].([]any); ok && len(all) > 0 {
		merged, err := g.mergeAll(s, all)
		if err != nil {
			return nil, err
		}
		return g.value(merged, depth+1, variant)
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		if alts, ok := s[key].([]any); ok && len(alts) > 0 {
			var firstErr error
			for _, alt := range orderAlternatives(alts) {
				merged := withoutKey(s, key)
				if am, ok := alt.(map[string]any); ok {
					for k, v := range am {
						merged[k] = v
					}
				} else if alt == false {
					continue
				}
				v, err := g.value(merged, depth+1, variant)
				if err == nil {
					return v, nil
				}
				if firstErr == nil {
					firstErr = err
				}
			}
			return nil, firstErr
		}
	}
	switch typ := schemaType(s); typ {
	case "object":
		return g.objectValue(s, depth, variant)
	case "array":
		return g.arrayValue(s, depth, variant)
	case "string":
		return stringValue(s, variant)
	case "integer":
		return numberValue(s, variant, true)
	case "number":
		return numberValue(s, variant, false)
	case "boolean":
		return variant%2 == 0, nil
	case "null":
		return nil, nil
	default:
		return nil, fmt.Errorf("unknown type %q", typ)
	}
}

// orderAlternatives puts {"type":"null"} alternatives last: a value says
// more than null.
func orderAlternatives(alts []any) []any {
	out := make([]any, 0, len(alts))
	var nulls []any
	for _, a := range alts {
		if am, ok := a.(map[string]any); ok && am["type"] == "null" {
			nulls = append(nulls, a)
			continue
		}
		out = append(out, a)
	}
	return append(out, nulls...)
}

func withoutKey(s map[string]any, key string) map[string]any {
	m := make(map[string]any, len(s))
	for k, v := range s {
		if k != key {
			m[k] = v
		}
	}
	return m
}

// mergeAll folds allOf's schemas (references resolved) into one: their
// properties and required lists joined, other keywords the last one's.
func (g *gen) mergeAll(s map[string]any, all []any) (map[string]any, error) {
	merged := withoutKey(s, "allOf")
	props := map[string]any{}
	if p, ok := merged["properties"].(map[string]any); ok {
		for k, v := range p {
			props[k] = v
		}
	}
	required := stringList(merged["required"])
	for _, sub := range all {
		for {
			sm, ok := sub.(map[string]any)
			if !ok {
				break
			}
			ref, ok := sm["$ref"].(string)
			if !ok {
				break
			}
			var err error
			if sub, err = g.resolve(ref); err != nil {
				return nil, err
			}
		}
		sm, ok := sub.(map[string]any)
		if !ok {
			if sub == false {
				return nil, errors.New("allOf holds false")
			}
			continue
		}
		for k, v := range sm {
			switch k {
			case "properties":
				if p, ok := v.(map[string]any); ok {
					for pk, pv := range p {
						props[pk] = pv
					}
				}
			case "required":
				required = append(required, stringList(v)...)
			default:
				merged[k] = v
			}
		}
	}
	if len(props) > 0 {
		merged["properties"] = props
	}
	if len(required) > 0 {
		list := make([]any, len(required))
		for i, r := range required {
			list[i] = r
		}
		merged["required"] = list
	}
	return merged, nil
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// resolve follows a reference inside the document: "#", "#/$defs/T",
// "#/definitions/T", any JSON pointer after "#".
func (g *gen) resolve(ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, fmt.Errorf("$ref %q: only references inside the schema are followed", ref)
	}
	cur := g.root
	if ptr == "" {
		return cur, nil
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, fmt.Errorf("$ref %q: anchors are not followed", ref)
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q: no %q", ref, tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("$ref %q: no index %q", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("$ref %q: %q is inside a value", ref, tok)
		}
	}
	return cur, nil
}

// schemaType is the type to generate: the first of a list that is not
// null, or what the keywords imply.
func schemaType(s map[string]any) string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		first := ""
		for _, x := range t {
			if ts, ok := x.(string); ok {
				if first == "" {
					first = ts
				}
				if ts != "null" {
					return ts
				}
			}
		}
		if first != "" {
			return first
		}
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := s[k]; ok {
				return true
			}
		}
		return false
	}
	switch {
	case has("properties", "required", "additionalProperties", "minProperties", "patternProperties"):
		return "object"
	case has("items", "prefixItems", "minItems", "maxItems", "uniqueItems"):
		return "array"
	case has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
		return "number"
	}
	return "string"
}

func (g *gen) objectValue(s map[string]any, depth, variant int) (any, error) {
	out := map[string]any{}
	props, _ := s["properties"].(map[string]any)
	required := map[string]bool{}
	for _, r := range stringList(s["required"]) {
		required[r] = true
	}
	names := make([]string, 0, len(props))
	for name := range props {
		names = append(names, name)
	}
	sort.Strings(names)
	for i, name := range names {
		if !required[name] && depth >= optionalDepth {
			continue
		}
		v, err := g.value(props[name], depth+1, variantFor(variant, i))
		if err != nil {
			if required[name] {
				return nil, fmt.Errorf("property %s: %w", name, err)
			}
			continue // an optional property we cannot fill stays out
		}
		out[name] = v
	}
	for name := range required {
		if _, ok := out[name]; ok {
			continue
		}
		extra, err := g.extraSchema(s)
		if err != nil {
			return nil, fmt.Errorf("required property %s: %w", name, err)
		}
		v, err := g.value(extra, depth+1, variant)
		if err != nil {
			return nil, fmt.Errorf("property %s: %w", name, err)
		}
		out[name] = v
	}
	want := intKeyword(s, "minProperties", 0)
	if len(props) == 0 && depth < optionalDepth && s["additionalProperties"] != nil && s["additionalProperties"] != false {
		want = max(want, 1) // a map: one entry shows its values' shape
	}
	for i := 0; len(out) < want; i++ {
		extra, err := g.extraSchema(s)
		if err != nil {
			return nil, fmt.Errorf("minProperties: %w", err)
		}
		v, err := g.value(extra, depth+1, variant+i)
		if err != nil {
			return nil, err
		}
		out[fmt.Sprintf("key%d", i+1)] = v
	}
	if max, ok := s["maxProperties"].(float64); ok && float64(len(out)) > max {
		return nil, fmt.Errorf("maxProperties %v is below the %d properties required", max, len(out))
	}
	return out, nil
}

// extraSchema is the schema of a property the object does not declare.
func (g *gen) extraSchema(s map[string]any) (any, error) {
	switch a := s["additionalProperties"].(type) {
	case nil:
		return true, nil
	case bool:
		if !a {
			return nil, errors.New("additionalProperties is false")
		}
		return true, nil
	default:
		return a, nil
	}
}

func variantFor(variant, i int) int {
	if variant == 0 {
		return 0
	}
	return variant + i
}

func (g *gen) arrayValue(s map[string]any, depth, variant int) (any, error) {
	prefix, _ := s["prefixItems"].([]any)
	items := s["items"]
	if list, ok := items.([]any); ok { // draft 4-7 tuple form
		prefix, items = list, s["additionalItems"]
	}
	n := max(intKeyword(s, "minItems", 0), len(prefix))
	if n == 0 && depth < optionalDepth {
		n = 1 // one element shows the items' shape
	}
	if maxItems, ok := s["maxItems"].(float64); ok && n > int(maxItems) {
		n = int(maxItems)
	}
	unique := s["uniqueItems"] == true
	out := make([]any, 0, n)
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		sub := items
		if i < len(prefix) {
			sub = prefix[i]
		}
		if sub == nil {
			sub = true
		}
		x, err := g.value(sub, depth+1, variant)
		for v := variant + i; err == nil && unique && seen[key(x)] && v < variant+i+32; v++ {
			x, err = g.value(sub, depth+1, v)
		}
		if err == nil && unique && seen[key(x)] {
			err = errors.New("no distinct value found for uniqueItems")
		}
		if err != nil {
			if i >= intKeyword(s, "minItems", 0) && i >= len(prefix) {
				break
			}
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		seen[key(x)] = true
		out = append(out, x)
	}
	return out, nil
}

func key(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func intKeyword(s map[string]any, key string, def int) int {
	if f, ok := s[key].(float64); ok && f >= 0 && f < 1e6 {
		return int(f)
	}
	return def
}

var formats = map[string]string{
	"date-time": "2024-01-02T03:04:05Z",
	"date":      "2024-01-02",
	"time":      "03:04:05Z",
	"email":     "test@example.com",
	"idn-email": "test@example.com",
	"uri":       "https://example.com/",
	"iri":       "https://example.com/",
	"url":       "https://example.com/",
	"uuid":      "00000000-0000-4000-8000-000000000000",
	"hostname":  "example.com",
	"ipv4":      "192.0.2.1",
	"ipv6":      "2001:db8::1",
	"duration":  "PT1S",
}

func variantString(base string, variant int) string {
	if variant == 0 {
		return base
	}
	return base + strconv.Itoa(variant)
}

func stringValue(s map[string]any, variant int) (any, error) {
	minLen, maxLen := intKeyword(s, "minLength", 0), intKeyword(s, "maxLength", -1)
	format, _ := s["format"].(string)
	if f, ok := formats[format]; ok {
		if variant != 0 && (format == "uri" || format == "url" || format == "iri") {
			f += strconv.Itoa(variant)
		}
		return f, nil
	}
	v := variantString("test", variant)
	if pattern, ok := s["pattern"].(string); ok {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", pattern, err)
		}
		if !re.MatchString(v) {
			m, err := matching(pattern, variant)
			if err != nil {
				return nil, err
			}
			v = m
		}
		for utf8.RuneCountInString(v) < minLen && re.MatchString(v+"x") {
			v += "x"
		}
		if maxLen >= 0 && utf8.RuneCountInString(v) > maxLen {
			return nil, fmt.Errorf("no string of at most %d characters matching %q found", maxLen, pattern)
		}
		if utf8.RuneCountInString(v) < minLen {
			return nil, fmt.Errorf("no string of at least %d characters matching %q found", minLen, pattern)
		}
		return v, nil
	}
	for utf8.RuneCountInString(v) < minLen {
		v += "x"
	}
	if maxLen >= 0 && utf8.RuneCountInString(v) > maxLen {
		r := []rune(v)
		v = string(r[:maxLen])
		if variant != 0 && maxLen > 0 { // keep variants apart when cut
			r[maxLen-1] = rune('a' + variant%26)
			v = string(r[:maxLen])
		}
	}
	return v, nil
}

// matching builds a short string the regular expression matches; a
// variant other than 0 picks other runes of its character classes and
// other branches of its alternations.
func matching(pattern string, variant int) (string, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return "", fmt.Errorf("pattern %q: %w", pattern, err)
	}
	var b strings.Builder
	bl := builder{b: &b, variant: variant}
	if err := bl.build(re.Simplify()); err != nil {
		return "", fmt.Errorf("pattern %q: %w", pattern, err)
	}
	if !regexp.MustCompile(pattern).MatchString(b.String()) {
		return "", fmt.Errorf("pattern %q: no matching string found", pattern)
	}
	return b.String(), nil
}

type builder struct {
	b       *strings.Builder
	variant int
}

func (bl *builder) build(re *syntax.Regexp) error {
	b := bl.b
	switch re.Op {
	case syntax.OpNoMatch:
		return errors.New("the pattern matches nothing")
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			b.WriteRune(r)
		}
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return errors.New("an empty character class")
		}
		// Prefer a letter or digit in the class, else its first rune.
		r := re.Rune[0]
	pick:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for _, c := range "a0A" {
				if lo <= c && c <= hi {
					r = c
					break pick
				}
			}
		}
		if bl.variant != 0 {
			r = nthRune(re.Rune, r, bl.variant)
		}
		b.WriteRune(r)
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte('a')
	case syntax.OpCapture, syntax.OpPlus:
		return bl.build(re.Sub[0])
	case syntax.OpStar, syntax.OpQuest, syntax.OpEmptyMatch,
		syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
	case syntax.OpRepeat:
		for i := 0; i < re.Min; i++ {
			if err := bl.build(re.Sub[0]); err != nil {
				return err
			}
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if err := bl.build(sub); err != nil {
				return err
			}
		}
	case syntax.OpAlternate:
		return bl.build(re.Sub[bl.variant%len(re.Sub)])
	default:
		return fmt.Errorf("unsupported construct %v", re.Op)
	}
	return nil
}

// nthRune is the rune n places after r in the class's ranges, wrapping.
func nthRune(ranges []rune, r rune, n int) rune {
	var all []rune
	for i := 0; i+1 < len(ranges) && len(all) < 256; i += 2 {
		for c := ranges[i]; c <= ranges[i+1] && len(all) < 256; c++ {
			all = append(all, c)
		}
	}
	for i, c := range all {
		if c == r {
			return all[(i+n)%len(all)]
		}
	}
	return r
}

func numberValue(s map[string]any, variant int, integer bool) (any, error) {
	lo, hi := math.Inf(-1), math.Inf(1)
	loEx, hiEx := false, false
	if v, ok := s["minimum"].(float64); ok {
		lo = v
	}
	if v, ok := s["maximum"].(float64); ok {
		hi = v
	}
	switch v := s["exclusiveMinimum"].(type) {
	case float64:
		if v >= lo {
			lo, loEx = v, true
		}
	case bool: // draft 4
		loEx = v
	}
	switch v := s["exclusiveMaximum"].(type) {
	case float64:
		if v <= hi {
			hi, hiEx = v, true
		}
	case bool:
		hiEx = v
	}
	step := 1.0
	if m, ok := s["multipleOf"].(float64); ok && m > 0 {
		step = m
	} else if !integer {
		step = 0 // any number
	}
	if integer && step != math.Trunc(step) {
		step = 1 // an integer that is a multiple of a fraction: multiples of 1 serve when the fraction divides 1
	}
	ok := func(x float64) bool {
		if x < lo || x > hi || (loEx && x == lo) || (hiEx && x == hi) {
			return false
		}
		if step != 0 && math.Abs(math.Remainder(x, step)) > 1e-9 {
			return false
		}
		return !integer || x == math.Trunc(x)
	}
	// Candidates: 1 (plain), then the bounds stepped inside, each varied.
	var cands []float64
	base := []float64{1, 0}
	if !math.IsInf(lo, -1) {
		base = append([]float64{lo, nextAbove(lo, step, integer)}, base...)
	}
	if !math.IsInf(hi, 1) {
		base = append(base, hi, nextBelow(hi, step, integer))
	}
	if !math.IsInf(lo, -1) && !math.IsInf(hi, 1) {
		base = append(base, (lo+hi)/2)
	}
	for _, c := range base {
		if step > 0 {
			c = math.Ceil(c/step) * step
		}
		v := c
		if variant != 0 {
			inc := step
			if inc == 0 {
				inc = 1
			}
			v = c + float64(variant)*inc
		}
		cands = append(cands, v, c)
	}
	for _, c := range cands {
		if integer {
			c = math.Ceil(c)
		}
		if ok(c) {
			if integer {
				return int64(c), nil
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("no number in the range (%v, %v) found", lo, hi)
}

func nextAbove(x, step float64, integer bool) float64 {
	switch {
	case step > 0:
		return x + step
	case integer:
		return math.Floor(x) + 1
	}
	return x + 0.5
}

func nextBelow(x, step float64, integer bool) float64 {
	switch {
	case step > 0:
		return x - step
	case integer:
		return math.Ceil(x) - 1
	}
	return x - 0.5
}
