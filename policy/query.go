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

// match checks one constraint against a canonical query string, under every
// way a server may read it. Servers differ on which value of a repeated key
// they read, and some (older Java, Rails and Python parsers) split the query
// on ';' as well as '&'. An allow rule's constraint must hold under every
// reading: every value of the key satisfies it, whether the query is split
// on '&' alone or on '&' and ';'. A deny rule's constraint holds when it
// holds under some reading: one satisfying value is enough.
func (m *queryMatcher) match(query string, deny bool) bool {
	semi := strings.IndexByte(query, ';') >= 0
	if deny {
		return m.matchSplit(query, "&", true) || semi && m.matchSplit(query, "&;", true)
	}
	return m.matchSplit(query, "&", false) && (!semi || m.matchSplit(query, "&;", false))
}

// matchSplit checks the constraint with the query split on the bytes of
// seps. For an allow rule (some false) every value of the key must satisfy
// it; for a deny rule one value must, or, when the key may or must be
// missing, its absence.
func (m *queryMatcher) matchSplit(query, seps string, some bool) bool {
	seen := false
	for query != "" {
		pair := query
		if i := strings.IndexAny(query, seps); i >= 0 {
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
		ok := m.matchValue(val)
		if some && ok {
			return true
		}
		if !some && !ok {
			return false
		}
	}
	if !seen {
		return m.absent || m.optional
	}
	// Every value was checked: for an allow rule all satisfied the
	// constraint; for a deny rule none did.
	return !some
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
