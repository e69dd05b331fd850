// Package jsonscan reads JSON without reflection, for the events a model
// streams by the hundred per turn: encoding/json takes ~20 µs an event in
// wasm, this a small fraction of it. A Scanner reads one value; on input
// it does not take (a malformed value, an escape it does not decode,
// invalid UTF-8) it fails, and its callers fall back to encoding/json,
// which then says what is wrong. It accepts only what encoding/json
// accepts, and decodes it the same (fuzz tests of the callers check).
package jsonscan

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Scanner reads JSON from a byte slice.
type Scanner struct {
	b   []byte
	i   int
	bad bool
}

// New returns a Scanner of b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// Failed reports whether the input was refused.
func (s *Scanner) Failed() bool { return s.bad }

// Fail marks the input refused: its caller does not take it.
func (s *Scanner) Fail() { s.bad = true }

// End reports whether only whitespace is left, and the input was taken.
func (s *Scanner) End() bool {
	s.ws()
	return !s.bad && s.i == len(s.b)
}

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *Scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// Object reads an object, calling member with each key (valid until the
// next read); member must read the value. It stops early, failed, when
// member returns false.
func (s *Scanner) Object(member func(key string) bool) {
	if s.bad || s.peek() != '{' {
		s.bad = true
		return
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return
	}
	for !s.bad {
		key, ok := s.String()
		if !ok || s.peek() != ':' {
			s.bad = true
			return
		}
		s.i++
		if !member(key) {
			s.bad = true
			return
		}
		if s.bad {
			return
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return
		default:
			s.bad = true
		}
	}
}

// Array reads an array, calling elem for each element (which must read
// it).
func (s *Scanner) Array(elem func() bool) {
	if s.bad || s.peek() != '[' {
		s.bad = true
		return
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return
	}
	for !s.bad {
		if !elem() {
			s.bad = true
			return
		}
		if s.bad {
			return
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return
		default:
			s.bad = true
		}
	}
}

// Null reads null if it comes next, reporting whether it did.
func (s *Scanner) Null() bool {
	if s.bad || s.peek() != 'n' {
		return false
	}
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	s.bad = true
	return false
}

// String reads a string.
func (s *Scanner) String() (string, bool) {
	if s.bad || s.peek() != '"' {
		s.bad = true
		return "", false
	}
	s.i++
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !ascii && !utf8.Valid(raw) {
				s.bad = true // encoding/json replaces invalid bytes: leave it to it
				return "", false
			}
			return string(raw), true
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			s.bad = true
			return "", false
		case c >= 0x80:
			ascii = false
		}
		s.i++
	}
	s.bad = true
	return "", false
}

// escaped finishes a string from start that holds an escape at s.i.
func (s *Scanner) escaped(start int) (string, bool) {
	out := make([]byte, 0, s.i-start+16)
	out = append(out, s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(out) {
				s.bad = true
				return "", false
			}
			return string(out), true
		case c < 0x20:
			s.bad = true
			return "", false
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				s.bad = true
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// A pair decodes to one rune; a lone half is U+FFFD, as
				// encoding/json has it.
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					save := s.i
					s.i += 2
					if r2, ok := s.hex4(); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							continue
						}
					}
					s.i = save
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			s.bad = true
			return "", false
		}
	}
	s.bad = true
	return "", false
}

func (s *Scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// Int reads a non-negative integer of at most 9 digits, as stream indexes
// are; anything else fails.
func (s *Scanner) Int() (int, bool) {
	if s.bad {
		return 0, false
	}
	s.ws()
	start, n := s.i, 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' && s.i-start < 9 {
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		s.bad = true
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			s.bad = true
			return 0, false
		}
	}
	return n, true
}

// Skip reads any value and discards it.
func (s *Scanner) Skip() {
	switch s.peek() {
	case '{':
		s.Object(func(string) bool { s.Skip(); return true })
	case '[':
		s.Array(func() bool { s.Skip(); return true })
	case '"':
		s.String()
	case 'n':
		s.Null()
	case 't':
		s.literal("true")
	case 'f':
		s.literal("false")
	default:
		s.number()
	}
}

func (s *Scanner) literal(lit string) {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return
	}
	s.bad = true
}

// number reads a JSON number by the grammar's rules.
func (s *Scanner) number() {
	i := s.i
	if i < len(s.b) && s.b[i] == '-' {
		i++
	}
	switch {
	case i < len(s.b) && s.b[i] == '0':
		i++
	case i < len(s.b) && s.b[i] >= '1' && s.b[i] <= '9':
		for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
			i++
		}
	default:
		s.bad = true
		return
	}
	if i < len(s.b) && s.b[i] == '.' {
		i++
		d := i
		for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
			i++
		}
		if i == d {
			s.bad = true
			return
		}
	}
	if i < len(s.b) && (s.b[i] == 'e' || s.b[i] == 'E') {
		i++
		if i < len(s.b) && (s.b[i] == '+' || s.b[i] == '-') {
			i++
		}
		d := i
		for i < len(s.b) && s.b[i] >= '0' && s.b[i] <= '9' {
			i++
		}
		if i == d {
			s.bad = true
			return
		}
	}
	s.i = i
}
