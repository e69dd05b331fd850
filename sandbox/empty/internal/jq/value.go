// Package jq is the empty sandbox's jq: the part of jq's language that
// scripts use (paths, pipes, construction, conditionals, reduce, the
// common builtins, assignment and del), over JSON values that keep their
// objects' key order, as jq does. github.com/itchyny/gojq is the whole
// language, but it costs a module ~900 KB gzip.
package jq

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Values are nil, bool, float64, string, []any and *Object; they are never
// changed once built (updates copy).

// Object is a JSON object that keeps the order of its keys.
type Object struct {
	keys []string
	m    map[string]any
}

// NewObject returns an empty object.
func NewObject() *Object { return &Object{m: map[string]any{}} }

func (o *Object) get(k string) (any, bool) {
	v, ok := o.m[k]
	return v, ok
}

// With returns a copy of o with k set to v.
func (o *Object) With(k string, v any) *Object { return o.with(k, v) }

// with returns a copy of o with k set to v.
func (o *Object) with(k string, v any) *Object {
	c := &Object{keys: slices.Clone(o.keys), m: make(map[string]any, len(o.m)+1)}
	for kk, vv := range o.m {
		c.m[kk] = vv
	}
	if _, ok := c.m[k]; !ok {
		c.keys = append(c.keys, k)
	}
	c.m[k] = v
	return c
}

// set sets k in place, for objects being built.
func (o *Object) set(k string, v any) {
	if _, ok := o.m[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.m[k] = v
}

func (o *Object) without(k string) *Object {
	c := &Object{m: make(map[string]any, len(o.m))}
	for _, kk := range o.keys {
		if kk != k {
			c.keys = append(c.keys, kk)
			c.m[kk] = o.m[kk]
		}
	}
	return c
}

func (o *Object) sortedKeys() []string {
	ks := slices.Clone(o.keys)
	sort.Strings(ks)
	return ks
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case *Object:
		return "object"
	}
	return "unknown"
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	}
	return true
}

// order ranks types as jq sorts them.
func order(v any) int {
	switch v := v.(type) {
	case nil:
		return 0
	case bool:
		if v {
			return 2
		}
		return 1
	case float64:
		return 3
	case string:
		return 4
	case []any:
		return 5
	}
	return 6
}

// compare orders any two values as jq does.
func compare(a, b any) int {
	oa, ob := order(a), order(b)
	if oa != ob {
		return oa - ob
	}
	switch a := a.(type) {
	case float64:
		bf := b.(float64)
		switch {
		case a < bf:
			return -1
		case a > bf:
			return 1
		}
		return 0
	case string:
		return strings.Compare(a, b.(string))
	case []any:
		bb := b.([]any)
		for i := 0; i < len(a) && i < len(bb); i++ {
			if c := compare(a[i], bb[i]); c != 0 {
				return c
			}
		}
		return len(a) - len(bb)
	case *Object:
		bo := b.(*Object)
		ka, kb := a.sortedKeys(), bo.sortedKeys()
		if c := compare(strs(ka), strs(kb)); c != 0 {
			return c
		}
		for _, k := range ka {
			if c := compare(a.m[k], bo.m[k]); c != 0 {
				return c
			}
		}
	}
	return 0
}

func strs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// Decoding.

// Decoder reads a stream of JSON values.
type Decoder struct {
	s    string
	pos  int
	line int
}

// NewDecoder reads the values of s.
func NewDecoder(s string) *Decoder { return &Decoder{s: s, line: 1} }

// Line is the line the decoder reached, for error messages.
func (d *Decoder) Line() int { return d.line }

// Next returns the next value; ok is false at the end of the stream.
func (d *Decoder) Next() (v any, ok bool, err error) {
	d.space()
	if d.pos >= len(d.s) {
		return nil, false, nil
	}
	v, err = d.value(0)
	return v, err == nil, err
}

func (d *Decoder) space() {
	for d.pos < len(d.s) {
		switch d.s[d.pos] {
		case '\n':
			d.line++
			fallthrough
		case ' ', '\t', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *Decoder) errf(format string, args ...any) error {
	return fmt.Errorf("%s at line %d, column %d", fmt.Sprintf(format, args...), d.line, d.pos+1)
}

func (d *Decoder) value(depth int) (any, error) {
	if depth > 512 {
		return nil, d.errf("exceeds depth limit for parsing")
	}
	d.space()
	if d.pos >= len(d.s) {
		return nil, d.errf("unfinished JSON term")
	}
	switch c := d.s[d.pos]; {
	case c == '{':
		d.pos++
		o := NewObject()
		d.space()
		if d.pos < len(d.s) && d.s[d.pos] == '}' {
			d.pos++
			return o, nil
		}
		for {
			d.space()
			if d.pos >= len(d.s) || d.s[d.pos] != '"' {
				return nil, d.errf("object keys must be strings")
			}
			k, err := d.str()
			if err != nil {
				return nil, err
			}
			d.space()
			if d.pos >= len(d.s) || d.s[d.pos] != ':' {
				return nil, d.errf("objects must consist of key:value pairs")
			}
			d.pos++
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			o.set(k, v)
			d.space()
			if d.pos < len(d.s) && d.s[d.pos] == ',' {
				d.pos++
				continue
			}
			if d.pos < len(d.s) && d.s[d.pos] == '}' {
				d.pos++
				return o, nil
			}
			return nil, d.errf("expected , or } in object")
		}
	case c == '[':
		d.pos++
		arr := []any{}
		d.space()
		if d.pos < len(d.s) && d.s[d.pos] == ']' {
			d.pos++
			return arr, nil
		}
		for {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
			d.space()
			if d.pos < len(d.s) && d.s[d.pos] == ',' {
				d.pos++
				continue
			}
			if d.pos < len(d.s) && d.s[d.pos] == ']' {
				d.pos++
				return arr, nil
			}
			return nil, d.errf("expected , or ] in array")
		}
	case c == '"':
		return d.str()
	case c == '-' || c >= '0' && c <= '9':
		start := d.pos
		d.pos++
		for d.pos < len(d.s) && strings.IndexByte("0123456789.eE+-", d.s[d.pos]) >= 0 {
			d.pos++
		}
		f, err := strconv.ParseFloat(d.s[start:d.pos], 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && errors.Is(ne.Err, strconv.ErrRange) {
				return f, nil
			}
			return nil, d.errf("invalid numeric literal")
		}
		return f, nil
	}
	for _, lit := range []struct {
		s string
		v any
	}{{"true", true}, {"false", false}, {"null", nil}, {"NaN", math.NaN()}} {
		if strings.HasPrefix(d.s[d.pos:], lit.s) {
			d.pos += len(lit.s)
			return lit.v, nil
		}
	}
	return nil, d.errf("invalid literal")
}

func (d *Decoder) str() (string, error) {
	d.pos++ // the opening quote
	var b strings.Builder
	for d.pos < len(d.s) {
		c := d.s[d.pos]
		switch {
		case c == '"':
			d.pos++
			return b.String(), nil
		case c == '\\':
			if d.pos+1 >= len(d.s) {
				return "", d.errf("unfinished string")
			}
			e := d.s[d.pos+1]
			d.pos += 2
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case '/', '\\', '"':
				b.WriteByte(e)
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", d.errf("invalid \\u escape")
				}
				if r >= 0xd800 && r < 0xdc00 && strings.HasPrefix(d.s[d.pos:], `\u`) {
					d.pos += 2
					lo, ok := d.hex4()
					if ok && lo >= 0xdc00 && lo < 0xe000 {
						r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
					} else {
						r = utf8.RuneError
					}
				}
				b.WriteRune(r)
			default:
				return "", d.errf("invalid escape")
			}
		case c == '\n':
			return "", d.errf("unescaped newline in string")
		default:
			b.WriteByte(c)
			d.pos++
		}
	}
	return "", d.errf("unfinished string")
}

func (d *Decoder) hex4() (rune, bool) {
	if d.pos+4 > len(d.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(d.s[d.pos:d.pos+4], 16, 32)
	if err != nil {
		return 0, false
	}
	d.pos += 4
	return rune(n), true
}

// Encoding.

// EncodeOpts says how Encode writes.
type EncodeOpts struct {
	Indent   string // "" for compact
	SortKeys bool
}

// Encode writes v as JSON, as jq prints it.
func Encode(b *strings.Builder, v any, o EncodeOpts) {
	encode(b, v, o, 0)
}

func encode(b *strings.Builder, v any, o EncodeOpts, depth int) {
	nl := func(d int) {
		if o.Indent != "" {
			b.WriteByte('\n')
			for i := 0; i < d; i++ {
				b.WriteString(o.Indent)
			}
		}
	}
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case float64:
		b.WriteString(formatNumber(v))
	case string:
		encodeString(b, v)
	case []any:
		if len(v) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			encode(b, e, o, depth+1)
		}
		nl(depth)
		b.WriteByte(']')
	case *Object:
		if len(v.keys) == 0 {
			b.WriteString("{}")
			return
		}
		keys := v.keys
		if o.SortKeys {
			keys = v.sortedKeys()
		}
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			nl(depth + 1)
			encodeString(b, k)
			b.WriteByte(':')
			if o.Indent != "" {
				b.WriteByte(' ')
			}
			encode(b, v.m[k], o, depth+1)
		}
		nl(depth)
		b.WriteByte('}')
	}
}

func formatNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "null"
	case math.IsInf(f, 1):
		return "1.7976931348623157e+308"
	case math.IsInf(f, -1):
		return "-1.7976931348623157e+308"
	case f == math.Trunc(f) && math.Abs(f) < 1e17:
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func encodeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}
