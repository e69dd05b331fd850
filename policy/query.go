package policy

import (
	"regexp"
	"strings"
)

// queryMatcher is a compiled QueryMatch. Keys and values are compared in
// their decoded form (percent-decoding, and '+' as a space, the way form
// decoders on servers read them), so no spelling of a key escapes its
// constraint.
type queryMatcher struct {
	key      string
	oneOf    []string
	pattern  *regexp.Regexp
	absent   bool
	optional bool
}

// match checks one constraint against a canonical query string. Every value
// of a repeated key must satisfy it, since servers differ on which one they
// read.
func (m *queryMatcher) match(query string) bool {
	seen := false
	for query != "" {
		pair := query
		if i := strings.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			query = ""
		}
		key, val := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			key, val = pair[:i], pair[i+1:]
		}
		if !decodedEqual(key, m.key) {
			continue
		}
		if m.absent {
			return false
		}
		seen = true
		if !m.matchValue(val) {
			return false
		}
	}
	return seen || m.absent || m.optional
}

func (m *queryMatcher) matchValue(enc string) bool {
	if m.pattern != nil {
		return m.pattern.MatchString(formDecode(enc))
	}
	if len(m.oneOf) == 0 {
		return true
	}
	for _, want := range m.oneOf {
		if decodedEqual(enc, want) {
			return true
		}
	}
	return false
}

// decodedEqual reports whether the form-decoded enc equals want, without
// allocating. enc comes from a canonical query, so every '%' starts a valid
// escape.
func decodedEqual(enc, want string) bool {
	j := 0
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			c, _ = unhex2(enc, i)
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

func formDecode(enc string) string {
	if !strings.ContainsAny(enc, "%+") {
		return enc
	}
	b := make([]byte, 0, len(enc))
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			c, _ = unhex2(enc, i)
			i += 2
		}
		b = append(b, c)
	}
	return string(b)
}
