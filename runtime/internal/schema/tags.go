package schema

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Rules are what a field's jsonschema tag says beyond its Go type, in
// invopop/jsonschema's syntax (a subset of its keys):
//
//	Label string `json:"label" jsonschema:"enum=bug,enum=feature,description=What kind of issue"`
//	Score int    `json:"score" jsonschema:"minimum=1,maximum=3"`
//	Notes string `json:"notes" jsonschema_description:"Free text, commas and all"`
//
// Keys: title, description, enum (repeated), minimum, maximum,
// exclusiveMinimum, exclusiveMaximum, minLength, maxLength, pattern,
// minItems, maxItems. A comma inside a value is written \,. For a slice or
// array field, minItems and maxItems apply to it and the others to its
// items. The schema carries the rules, and Decode enforces them, so a value
// the schema refuses never decodes.
type Rules struct {
	Title, Description string
	// Enum holds the allowed values, typed as the field's JSON type
	// (string, float64 or bool).
	Enum                 []any
	Minimum, Maximum     *float64
	ExclusiveMin         *float64
	ExclusiveMax         *float64
	MinLength, MaxLength *int
	Pattern              string
	MinItems, MaxItems   *int
}

// empty reports whether r says nothing.
func (r *Rules) empty() bool { return r == nil || reflect.ValueOf(*r).IsZero() }

// rulesCache holds each struct field's parsed rules, by tag text and type.
// (A mutex and a map: sync.Map costs the module more.)
var (
	cacheMu    sync.Mutex
	rulesCache = map[ruleKey]*Rules{}
	patterns   = map[string]*regexp.Regexp{}
)

type ruleKey struct {
	tag, desc string
	t         reflect.Type
}

// rulesOf parses a field's jsonschema and jsonschema_description tags for
// a field of type t. A malformed tag panics: it is a mistake in the
// agent's code, found when its schema is first made (damper build).
func rulesOf(tag, desc string, t reflect.Type) *Rules {
	if tag == "" && desc == "" {
		return nil
	}
	k := ruleKey{tag, desc, t}
	cacheMu.Lock()
	r, ok := rulesCache[k]
	cacheMu.Unlock()
	if ok {
		return r
	}
	r, err := parseRules(tag, desc, t)
	if err != nil {
		panic(fmt.Sprintf("schema: jsonschema tag %q: %v", tag, err))
	}
	cacheMu.Lock()
	rulesCache[k] = r
	cacheMu.Unlock()
	return r
}

func parseRules(tag, desc string, t reflect.Type) (*Rules, error) {
	r := &Rules{Description: desc}
	item := itemType(t)
	for _, kv := range splitTag(tag) {
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want key=value", kv)
		}
		var err error
		switch key {
		case "title":
			r.Title = val
		case "description":
			r.Description = val
		case "enum":
			var v any
			if v, err = enumValue(val, item); err == nil {
				r.Enum = append(r.Enum, v)
			}
		case "minimum":
			r.Minimum, err = number(val)
		case "maximum":
			r.Maximum, err = number(val)
		case "exclusiveMinimum":
			r.ExclusiveMin, err = number(val)
		case "exclusiveMaximum":
			r.ExclusiveMax, err = number(val)
		case "minLength":
			r.MinLength, err = count(val)
		case "maxLength":
			r.MaxLength, err = count(val)
		case "minItems":
			r.MinItems, err = count(val)
		case "maxItems":
			r.MaxItems, err = count(val)
		case "pattern":
			if _, err = compiled(val); err == nil {
				r.Pattern = val
			}
		default:
			return nil, fmt.Errorf("unknown key %q", key)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	return r, nil
}

// splitTag splits a tag on commas that are not escaped as \,.
func splitTag(tag string) []string {
	if tag == "" {
		return nil
	}
	var parts []string
	var b strings.Builder
	for i := 0; i < len(tag); i++ {
		switch {
		case tag[i] == '\\' && i+1 < len(tag) && tag[i+1] == ',':
			b.WriteByte(',')
			i++
		case tag[i] == ',':
			parts = append(parts, b.String())
			b.Reset()
		default:
			b.WriteByte(tag[i])
		}
	}
	return append(parts, b.String())
}

// itemType is the type a slice's or array's rules (but minItems and
// maxItems) apply to, through pointers.
func itemType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() != reflect.Uint8 {
		return itemType(t.Elem())
	}
	return t
}

func enumValue(s string, t reflect.Type) (any, error) {
	switch t.Kind() {
	case reflect.String:
		return s, nil
	case reflect.Bool:
		return strconv.ParseBool(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		return f, err
	}
	return nil, fmt.Errorf("a %s field cannot have an enum", t)
}

func number(s string) (*float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("%q is not a number", s)
	}
	return &f, nil
}

func count(s string) (*int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%q is not a count", s)
	}
	return &n, nil
}

// compiled returns the compiled pattern p, compiling it once.
func compiled(p string) (*regexp.Regexp, error) {
	cacheMu.Lock()
	re, ok := patterns[p]
	cacheMu.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	cacheMu.Lock()
	patterns[p] = re
	cacheMu.Unlock()
	return re, nil
}

// apply adds r's keywords to s, the schema of a value of type t: the
// items' schema for a slice or array (but minItems and maxItems).
func (r *Rules) apply(s any, t reflect.Type) any {
	m, ok := s.(map[string]any)
	if !ok || r.empty() {
		return s
	}
	if r.Title != "" {
		m["title"] = r.Title
	}
	if r.Description != "" {
		m["description"] = r.Description
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	target := m
	if (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() != reflect.Uint8 {
		if r.MinItems != nil {
			m["minItems"] = *r.MinItems
		}
		if r.MaxItems != nil {
			m["maxItems"] = *r.MaxItems
		}
		target = innermostItems(m)
	}
	if target == nil {
		return s
	}
	if len(r.Enum) > 0 {
		enum := r.Enum
		if hasType(target, "null") { // a pointer: null decodes too
			enum = append(enum[:len(enum):len(enum)], nil)
		}
		target["enum"] = enum
	}
	setNum := func(k string, v *float64) {
		if v != nil {
			target[k] = *v
		}
	}
	setNum("minimum", r.Minimum)
	setNum("maximum", r.Maximum)
	setNum("exclusiveMinimum", r.ExclusiveMin)
	setNum("exclusiveMaximum", r.ExclusiveMax)
	if r.MinLength != nil {
		target["minLength"] = *r.MinLength
	}
	if r.MaxLength != nil {
		target["maxLength"] = *r.MaxLength
	}
	if r.Pattern != "" {
		target["pattern"] = r.Pattern
	}
	return s
}

// innermostItems follows items down nested arrays to the schema of the
// first element that is not an array.
func innermostItems(m map[string]any) map[string]any {
	for {
		it, ok := m["items"].(map[string]any)
		if !ok {
			return nil
		}
		if !hasType(it, "array") {
			return it
		}
		m = it
	}
}

func hasType(m map[string]any, typ string) bool {
	switch t := m["type"].(type) {
	case string:
		return t == typ
	case []any:
		for _, x := range t {
			if x == typ {
				return true
			}
		}
	}
	return false
}

// check refuses v (a decoded scalar of a field, or an item of one) when it
// breaks r, with the problem's text.
func (r *Rules) check(v any) string {
	if r.empty() {
		return ""
	}
	if len(r.Enum) > 0 {
		found := false
		for _, e := range r.Enum {
			if equalJSON(e, v) {
				found = true
				break
			}
		}
		if !found {
			return "want one of " + enumList(r.Enum)
		}
	}
	switch v := v.(type) {
	case string:
		n := utf8.RuneCountInString(v)
		if r.MinLength != nil && n < *r.MinLength {
			return fmt.Sprintf("want at least %d characters, got %d", *r.MinLength, n)
		}
		if r.MaxLength != nil && n > *r.MaxLength {
			return fmt.Sprintf("want at most %d characters, got %d", *r.MaxLength, n)
		}
		if r.Pattern != "" {
			if re, err := compiled(r.Pattern); err == nil && !re.MatchString(v) {
				return fmt.Sprintf("want a string matching %q", r.Pattern)
			}
		}
	case float64:
		if msg := checkBounds(v, r.Minimum, r.Maximum, r.ExclusiveMin, r.ExclusiveMax); msg != "" {
			return msg
		}
	}
	return ""
}

func checkBounds(v float64, lo, hi, xlo, xhi *float64) string {
	switch {
	case lo != nil && v < *lo:
		return "want at least " + fmtNum(*lo)
	case hi != nil && v > *hi:
		return "want at most " + fmtNum(*hi)
	case xlo != nil && v <= *xlo:
		return "want more than " + fmtNum(*xlo)
	case xhi != nil && v >= *xhi:
		return "want less than " + fmtNum(*xhi)
	}
	return ""
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func enumList(vals []any) string {
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteString(", ")
		}
		switch v := v.(type) {
		case string:
			b.WriteString(strconv.Quote(v))
		case float64:
			b.WriteString(fmtNum(v))
		default:
			fmt.Fprint(&b, v)
		}
	}
	return b.String()
}

// checkValue refuses tree (a decoded member of type t, generic values with
// json.Number) when it breaks r: r's array keywords for a slice or array,
// the others for its items, down nested arrays.
func (r *Rules) checkValue(tree any, t reflect.Type, path string) error {
	if r.empty() || tree == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t.Elem().Kind() != reflect.Uint8 {
		items, _ := tree.([]any)
		if r.MinItems != nil && len(items) < *r.MinItems {
			return fmt.Errorf("%s: want at least %d items, got %d", where(path), *r.MinItems, len(items))
		}
		if r.MaxItems != nil && len(items) > *r.MaxItems {
			return fmt.Errorf("%s: want at most %d items, got %d", where(path), *r.MaxItems, len(items))
		}
		inner := *r
		inner.MinItems, inner.MaxItems = nil, nil
		for i, item := range items {
			if err := inner.checkValue(item, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		return nil
	}
	v := tree
	if n, ok := tree.(json.Number); ok {
		f, err := n.Float64()
		if err != nil {
			return nil // out of range: the type check says so
		}
		v = f
	}
	if msg := r.check(v); msg != "" {
		return fmt.Errorf("%s: %s", where(path), msg)
	}
	return nil
}
