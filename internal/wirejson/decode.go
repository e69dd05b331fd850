// Package wirejson encodes and decodes the wire messages of every effect
// round trip by hand, and everything else with encoding/json.
//
// encoding/json is slow in a wasm module: its scanner calls a function
// value per byte, and every such call is expensive in Go's wasm code
// (measured under wazero: 18-20 µs to decode a one-result Resume, 13 µs
// for a FetchValue, against a 4-5 µs budget for the whole round trip).
// The hand-written paths cost a small fraction of that and decode exactly
// what encoding/json decodes from what the hosts send, which the tests
// check against encoding/json, fuzzing included. Member names match
// exactly (encoding/json also accepts other cases; no host sends them).
//
// The Go host (local) uses the same codecs for its side of the round trip
// (DecodeOutput, AppendResume, the args and values of fetch and emit):
// natively encoding/json is fast enough per byte, but validating and
// copying json.RawMessage again, reflection and allocations cost about
// as much as the rest of the host's work. Hence one package under the
// module's internal/, for both sides, rather than a copy in each.
package wirejson

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/damperdev/damper/internal/wire"
)

// Encoded is JSON its writer vouches for: Marshal returns it as it is. It
// is for args written by hand on a hot path; invalid JSON in it would
// corrupt the whole output of an export, so only code of the runtime that
// writes it with AppendString and constants may use it.
type Encoded []byte

// Marshal is json.Marshal, by hand for the args of fetch and read effects.
func Marshal(v any) ([]byte, error) {
	switch v := v.(type) {
	case Encoded:
		return v, nil
	case wire.FetchArgs:
		return AppendFetchArgs(make([]byte, 0, fetchArgsSize(&v)), &v), nil
	case *wire.FetchArgs:
		return AppendFetchArgs(make([]byte, 0, fetchArgsSize(v)), v), nil
	case wire.ReadArgs:
		return appendReadArgs(nil, &v), nil
	}
	return json.Marshal(v)
}

// Unmarshal is json.Unmarshal, by hand for the values of fetch and read
// effects.
func Unmarshal(data []byte, v any) error {
	switch v := v.(type) {
	case *wire.FetchValue:
		return DecodeFetchValue(data, v)
	case *wire.ReadValue:
		return decodeReadValue(data, v)
	}
	return json.Unmarshal(data, v)
}

// DecodeResume decodes a wire.Resume. Each result's Value is a slice of
// data, not a copy: data must not change while the values are in use.
func DecodeResume(data []byte) (wire.Resume, error) {
	return DecodeResumeInto(data, nil)
}

// DecodeOutput decodes a wire.Output, as the Go host reads what the
// exports return. Each effect's Args and the Result are slices of data,
// not copies: data must not change while they are in use.
func DecodeOutput(data []byte) (wire.Output, error) {
	d := decoder{data: data}
	var out wire.Output
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "task":
			if !d.null() {
				out.Task = d.string()
			}
		case "done":
			if !d.null() {
				out.Done = d.bool()
			}
		case "effects":
			out.Effects = decodeSlice(&d, out.Effects, (*decoder).effect)
		case "result":
			out.Result = d.skip()
		case "error":
			out.Error = d.wireError(out.Error)
		default:
			d.skip()
		}
	}
	d.end()
	return out, d.err
}

func (d *decoder) effect(e *wire.Effect) {
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "id":
			if !d.null() {
				e.ID = d.uint(64)
			}
		case "type":
			if !d.null() {
				e.Type = d.string()
			}
		case "args":
			e.Args = d.skip()
		default:
			d.skip()
		}
	}
}

// decodeSlice decodes an array into s as encoding/json decodes it into a
// slice of structs: null is nil, [] is empty but not nil, and elements
// are decoded into those already within s's capacity, which keep the
// fields a repeated member name does not set again.
func decodeSlice[T any](d *decoder, s []T, elem func(*decoder, *T)) []T {
	if d.null() {
		return nil
	}
	i := 0
	for a := d.array(); a.next(); i++ {
		if i < cap(s) {
			s = s[:i+1]
		} else {
			var zero T
			s = append(s, zero)
		}
		elem(d, &s[i])
	}
	if i == 0 && s == nil {
		return []T{}
	}
	return s[:i]
}

// DecodeFetchArgs decodes a wire.FetchArgs into a, as the Go host reads
// every fetch effect.
func DecodeFetchArgs(data []byte, a *wire.FetchArgs) error {
	d := decoder{data: data}
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "method":
			if !d.null() {
				a.Method = d.string()
			}
		case "url":
			if !d.null() {
				a.URL = d.string()
			}
		case "headers":
			a.Headers = d.headers(a.Headers)
		case "body":
			a.Body = d.base64()
		case "stream":
			if !d.null() {
				a.Stream = d.bool()
			}
		default:
			d.skip()
		}
	}
	d.end()
	return d.err
}

// DecodeEmitArgs decodes a wire.EmitArgs into a, as the Go host reads the
// emit effect that comes with every fetch (its policy event). Each event's
// Data is a slice of data.
func DecodeEmitArgs(data []byte, a *wire.EmitArgs) error {
	d := decoder{data: data}
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "events":
			a.Events = decodeSlice(&d, a.Events, (*decoder).event)
		default:
			d.skip()
		}
	}
	d.end()
	return d.err
}

func (d *decoder) event(e *wire.Event) {
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "type":
			if !d.null() {
				e.Type = d.string()
			}
		case "session":
			if !d.null() {
				e.Session = d.string()
			}
		case "turn":
			if !d.null() {
				e.Turn = d.string()
			}
		case "call":
			if !d.null() {
				e.Call = d.string()
			}
		case "data":
			e.Data = d.skip()
		default:
			d.skip()
		}
	}
}

// wireError decodes a wire.Error as encoding/json decodes it into e: null
// is nil, and an object fills e, allocated if nil.
func (d *decoder) wireError(e *wire.Error) *wire.Error {
	if d.null() {
		return nil
	}
	if e == nil {
		e = new(wire.Error)
	}
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "type":
			if !d.null() {
				e.Type = d.string()
			}
		case "message":
			if !d.null() {
				e.Message = d.string()
			}
		case "status":
			if !d.null() {
				e.Status = int(d.int(strconv.IntSize))
			}
		case "details":
			e.Details = d.skip()
		default:
			d.skip()
		}
	}
	return e
}

// Decoded is where DecodeResumeInto decodes a result's value in place.
// V is a *wire.FetchValue or a *wire.ReadValue; Raw is the value's text
// (the result's Value) once V holds its decode, nil while it does not.
type Decoded struct {
	V   any
	Raw []byte
}

// DecodeResumeInto is DecodeResume that also decodes a result's value
// where dest(task, id) says, task and id being those read so far (hosts
// send them first): the scheduler's waiting effect, which then need not
// parse the value a second time. It returns the same Resume and error as
// DecodeResume whatever dest does: a value that does not decode into the
// destination is skipped as DecodeResume skips it and leaves Raw nil, so
// that the waiter decodes the Value itself and gets the usual error.
//
// Duplicate names can make a destination hold the decode of a value
// other than its result's: the caller uses V only when Raw is that very
// slice of data (same start and length) as its result's Value.
func DecodeResumeInto(data []byte, dest func(task string, id uint64) *Decoded) (wire.Resume, error) {
	var r wire.Resume
	d := decoder{data: data, resume: &r, dest: dest}
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "task":
			if !d.null() {
				r.Task = d.string()
			}
		case "results":
			if d.null() {
				r.Results = nil
				continue
			}
			// decodeSlice, written out: a call through a func value per
			// result costs in Go's wasm code.
			rs := r.Results
			if rs == nil {
				rs = make([]wire.Result, 0, 8) // one allocation for most batches
			}
			i := 0
			for a := d.array(); a.next(); i++ {
				if i < cap(rs) {
					rs = rs[:i+1]
				} else {
					rs = append(rs, wire.Result{})
				}
				d.result(&rs[i])
			}
			r.Results = rs[:i]
		default:
			d.skip()
		}
	}
	d.end()
	return r, d.err
}

func (d *decoder) result(r *wire.Result) {
	haveID := false
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "id":
			if !d.null() {
				r.ID = d.uint(64)
			}
			haveID = true
		case "value":
			if haveID && d.dest != nil {
				if v := d.dest(d.resume.Task, r.ID); v != nil {
					r.Value = d.valueInto(v)
					continue
				}
			}
			r.Value = d.skip()
		case "error":
			r.Error = d.wireError(r.Error)
		default:
			d.skip()
		}
	}
}

// valueInto decodes the next value into v.V, from its zero value, and
// returns the value's text, as skip does. When it does not decode, the
// decoder backs up and skips it instead, so that the resume decodes or
// fails exactly as without a destination, and v.Raw stays nil.
func (d *decoder) valueInto(v *Decoded) []byte {
	v.Raw = nil
	d.ws()
	start, depth := d.i, d.depth
	switch dst := v.V.(type) {
	case *wire.FetchValue:
		*dst = wire.FetchValue{}
		d.fetchValue(dst)
	case *wire.ReadValue:
		*dst = wire.ReadValue{}
		d.readValue(dst)
	default:
		return d.skip()
	}
	if d.err != nil {
		d.i, d.depth, d.err = start, depth, nil
		return d.skip()
	}
	v.Raw = d.data[start:d.i]
	return v.Raw
}

// DecodeFetchValue decodes a wire.FetchValue into v.
func DecodeFetchValue(data []byte, v *wire.FetchValue) error {
	d := decoder{data: data}
	d.fetchValue(v)
	d.end()
	return d.err
}

func (d *decoder) fetchValue(v *wire.FetchValue) {
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "status":
			if !d.null() {
				v.Status = int(d.int(strconv.IntSize))
			}
		case "headers":
			v.Headers = d.headers(v.Headers)
		case "body":
			v.Body = d.base64()
		case "handle":
			if !d.null() {
				v.Handle = d.uint(64)
			}
		default:
			d.skip()
		}
	}
}

func decodeReadValue(data []byte, v *wire.ReadValue) error {
	d := decoder{data: data}
	d.readValue(v)
	d.end()
	return d.err
}

func (d *decoder) readValue(v *wire.ReadValue) {
	for o := d.object(); o.next(); {
		switch string(o.key) {
		case "body":
			v.Body = d.base64()
		case "eof":
			if !d.null() {
				v.EOF = d.bool()
			}
		default:
			d.skip()
		}
	}
}

// headers decodes [[name, value], ...] as encoding/json decodes it into a
// []wire.Header: null is nil, and of a longer list only the first two
// elements count.
func (d *decoder) headers(hs []wire.Header) []wire.Header {
	if d.null() {
		return nil
	}
	hs = hs[:0]
	if hs == nil {
		hs = []wire.Header{}
	}
	for a := d.array(); a.next(); {
		var h wire.Header
		i := 0
		for p := d.array(); p.next(); i++ {
			if i < len(h) {
				h[i] = d.string()
			} else {
				d.skip()
			}
		}
		hs = append(hs, h)
	}
	return hs
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// decoder reads one JSON value. The first error sticks: every loop over
// members or elements ends after it, and what the decoder returns with it
// is meaningless (the fast paths of expect and null skip the check).
//
// Like encoding/json, the decoders leave a field as it is for a null
// member (each scalar is read under if !d.null()), and decode a repeated
// member into what an earlier one left: a struct's fields, a *wire.Error,
// the elements of a slice of structs within its capacity (decodeSlice).
type decoder struct {
	data  []byte
	i     int
	depth int
	err   error

	// For DecodeResumeInto: the resume so far and the destinations.
	resume *wire.Resume
	dest   func(task string, id uint64) *Decoded
}

// fail records an error. It is never inlined, and neither are the slow
// paths that call it: what they cost to build an error must not count
// against the inlining budget of the fast paths, as calls are expensive in
// Go's wasm code.
//
//go:noinline
func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("json at offset %d: %s", d.i, fmt.Sprintf(format, args...))
	}
}

// ws skips blanks. Its loop works on locals: Go's wasm code keeps a
// field in memory, loading and storing it on every use.
func (d *decoder) ws() {
	data, i := d.data, d.i
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			d.i = i
			return
		}
	}
	d.i = i
}

// peek returns the next byte past blanks, or 0 at the end.
func (d *decoder) peek() byte {
	d.ws()
	if d.err != nil || d.i >= len(d.data) {
		return 0
	}
	return d.data[d.i]
}

// expect consumes c, past blanks. The fast path, c right there as in the
// compact JSON both hosts send, is inlined; blanks and errors take the
// call.
func (d *decoder) expect(c byte) bool {
	if i := d.i; i < len(d.data) && d.data[i] == c {
		d.i = i + 1
		return true
	}
	return d.expectSlow(c)
}

//go:noinline
func (d *decoder) expectSlow(c byte) bool {
	if d.peek() != c {
		d.fail("want %q", c)
		return false
	}
	d.i++
	return true
}

// end checks that nothing but blanks follows the value.
func (d *decoder) end() {
	d.ws()
	if d.err == nil && d.i < len(d.data) {
		d.fail("data after the value")
	}
}

// null consumes a null and reports whether there was one. The fast path,
// inlined, answers no when the next byte starts something else: any byte
// but n and those a blank may be (all at most ' ').
func (d *decoder) null() bool {
	if i := d.i; i < len(d.data) {
		if c := d.data[i]; c != 'n' && c > ' ' {
			return false
		}
	}
	return d.nullSlow()
}

//go:noinline
func (d *decoder) nullSlow() bool {
	if d.peek() == 'n' {
		d.literal("null")
		return d.err == nil
	}
	return false
}

func (d *decoder) literal(lit string) {
	if len(d.data)-d.i < len(lit) || string(d.data[d.i:d.i+len(lit)]) != lit {
		d.fail("want %s", lit)
		return
	}
	d.i += len(lit)
}

// members iterates an object's members: for o := d.object(); o.next(); {
// switch string(o.key) ... } where each case consumes the value. A null
// is an object without members, as for encoding/json.
type members struct {
	d     *decoder
	key   []byte
	first bool
	done  bool
}

func (d *decoder) object() members {
	if d.null() {
		return members{d: d, done: true}
	}
	if !d.expect('{') {
		return members{d: d, done: true}
	}
	d.depth++
	if d.depth > maxDepth {
		d.fail("nested too deep")
	}
	return members{d: d, first: true}
}

func (m *members) next() bool {
	d := m.d
	if m.done || d.err != nil {
		return false
	}
	c := d.peek()
	switch {
	case c == '}':
		d.i++
		d.depth--
		m.done = true
		return false
	case !m.first:
		if !d.expect(',') {
			return false
		}
	}
	m.first = false
	if d.peek() != '"' {
		d.fail("want a member name")
		return false
	}
	m.key = d.stringBytes()
	return d.expect(':')
}

// elements iterates an array's elements like members; null is empty.
type elements struct {
	d     *decoder
	first bool
	done  bool
}

func (d *decoder) array() elements {
	if d.null() {
		return elements{d: d, done: true}
	}
	if !d.expect('[') {
		return elements{d: d, done: true}
	}
	d.depth++
	if d.depth > maxDepth {
		d.fail("nested too deep")
	}
	return elements{d: d, first: true}
}

func (e *elements) next() bool {
	d := e.d
	if e.done || d.err != nil {
		return false
	}
	switch c := d.peek(); {
	case c == ']':
		d.i++
		d.depth--
		e.done = true
		return false
	case !e.first:
		if !d.expect(',') {
			return false
		}
	}
	e.first = false
	return true
}

// skip consumes any value and returns its bytes.
func (d *decoder) skip() []byte {
	c := d.peek()
	start := d.i
	switch {
	case c == '{':
		for o := d.object(); o.next(); {
			d.skip()
		}
	case c == '[':
		for a := d.array(); a.next(); {
			d.skip()
		}
	case c == '"':
		d.stringBytes()
	case c == 't':
		d.literal("true")
	case c == 'f':
		d.literal("false")
	case c == 'n':
		d.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		d.number()
	default:
		d.fail("want a value")
	}
	if d.err != nil {
		return nil
	}
	return d.data[start:d.i]
}

// number consumes a JSON number and returns its text. It works on locals
// (see ws).
func (d *decoder) number() []byte {
	data, start := d.data, d.i
	i := start
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	default:
		n := i
		if i = digits(data, i); i == n {
			return d.malformedNumber(i)
		}
	}
	if i < len(data) && data[i] == '.' {
		i++
		n := i
		if i = digits(data, i); i == n {
			return d.malformedNumber(i)
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		n := i
		if i = digits(data, i); i == n {
			return d.malformedNumber(i)
		}
	}
	d.i = i
	return data[start:i]
}

// digits returns the index past the decimal digits of data from i on.
func digits(data []byte, i int) int {
	for i < len(data) && '0' <= data[i] && data[i] <= '9' {
		i++
	}
	return i
}

//go:noinline
func (d *decoder) malformedNumber(i int) []byte {
	d.i = i
	d.fail("malformed number")
	return nil
}

// uint decodes an unsigned integer of the given bits; null is 0.
func (d *decoder) uint(bits int) uint64 {
	if d.null() {
		return 0
	}
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		d.fail("want a number")
		return 0
	}
	n := d.number()
	if d.err != nil {
		return 0
	}
	if v, ok := plainUint(n); ok && (bits == 64 || v>>bits == 0) {
		return v
	}
	v, err := strconv.ParseUint(string(n), 10, bits)
	if err != nil {
		d.fail("number %s is not a uint%d", n, bits)
	}
	return v
}

// int decodes a signed integer of the given bits; null is 0.
func (d *decoder) int(bits int) int64 {
	if d.null() {
		return 0
	}
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		d.fail("want a number")
		return 0
	}
	n := d.number()
	if d.err != nil {
		return 0
	}
	if v, ok := plainUint(n); ok && v < 1<<(bits-1) {
		return int64(v)
	}
	v, err := strconv.ParseInt(string(n), 10, bits)
	if err != nil {
		d.fail("number %s is not an int%d", n, bits)
	}
	return v
}

// plainUint is the value of n, a JSON number, when it is at most 19
// digits and nothing else (so it fits in a uint64): the ids and statuses
// the hosts send, without strconv's call and checks.
func plainUint(n []byte) (uint64, bool) {
	if len(n) == 0 || len(n) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range n {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}

// bool decodes true or false; null is false.
func (d *decoder) bool() bool {
	switch d.peek() {
	case 't':
		d.literal("true")
		return d.err == nil
	case 'f':
		d.literal("false")
	case 'n':
		d.literal("null")
	default:
		d.fail("want a boolean")
	}
	return false
}

// string decodes a string; null is "".
func (d *decoder) string() string {
	if d.null() {
		return ""
	}
	if d.peek() != '"' {
		d.fail("want a string")
		return ""
	}
	return string(d.stringBytes())
}

// base64 decodes a base64 string (standard encoding) into bytes; null is
// nil.
func (d *decoder) base64() []byte {
	if d.null() {
		return nil
	}
	if d.peek() != '"' {
		d.fail("want a base64 string")
		return nil
	}
	s := d.stringBytes()
	if d.err != nil {
		return nil
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		d.fail("bad base64: %v", err)
		return nil
	}
	return b[:n]
}

// stringBytes consumes a string (the next byte is its quote) and returns
// its unescaped bytes: a slice of data when there is nothing to unescape.
// Invalid UTF-8 and lone surrogates become U+FFFD, as with encoding/json.
//
// The loop, the decoder's hottest, works on locals (see ws); unescape
// takes over at the first byte it does not pass, control characters
// included, and fails on those at the same offset.
func (d *decoder) stringBytes() []byte {
	data, start := d.data, d.i+1 // past the opening quote
	for i := start; i < len(data); i++ {
		c := data[i]
		if c == '"' {
			d.i = i + 1
			return data[start:i]
		}
		if c == '\\' || c >= utf8.RuneSelf || c < 0x20 {
			d.i = i
			return d.unescape(start)
		}
	}
	d.i = len(data)
	d.fail("unterminated string")
	return nil
}

func (d *decoder) unescape(start int) []byte {
	b := append([]byte(nil), d.data[start:d.i]...)
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			return b
		case c < 0x20:
			d.fail("control character in a string")
			return nil
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d.data[d.i:])
			d.i += size
			b = utf8.AppendRune(b, r) // RuneError for an invalid byte
		case c != '\\':
			b = append(b, c)
			d.i++
		default:
			d.i++
			if d.i >= len(d.data) {
				d.fail("unterminated string")
				return nil
			}
			e := d.data[d.i]
			d.i++
			switch e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := d.hex4()
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if d.i+1 < len(d.data) && d.data[d.i] == '\\' && d.data[d.i+1] == 'u' {
						save := d.i
						d.i += 2
						r2 = d.hex4()
						if utf16.DecodeRune(r, r2) == utf8.RuneError {
							d.i, r2 = save, -1 // not a pair: decode it on its own
						}
					}
					if r2 < 0 {
						r = utf8.RuneError
					} else {
						r = utf16.DecodeRune(r, r2)
					}
				}
				b = utf8.AppendRune(b, r)
			default:
				d.fail("bad escape \\%c", e)
				return nil
			}
		}
	}
	d.fail("unterminated string")
	return nil
}

func (d *decoder) hex4() rune {
	if len(d.data)-d.i < 4 {
		d.fail("short \\u escape")
		return 0
	}
	var r rune
	for _, c := range d.data[d.i : d.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			d.fail("bad \\u escape")
			return 0
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r
}
