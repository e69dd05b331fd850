package policy

import (
	"errors"
	"fmt"
	"strings"
)

// A glob matches a path (segments separated by '/') or a host (labels
// separated by '.'). A segment "*" matches one non-empty segment, "**" any
// number of segments including none, and a '*' inside a segment any run of
// characters within it. A trailing slash is not significant, in the pattern
// or the path: most servers route "/a/" as "/a", so a deny rule for "/a"
// must not miss it. Matching never allocates.
type glob struct {
	sep  byte
	fold bool
	segs []globSeg
	// prefix is the path up to the first wildcard, "/a/b" for "/a/b/*":
	// checking it first rejects most rules without walking segments.
	prefix string
}

type globKind uint8

const (
	segLiteral globKind = iota
	segStar             // "*": one non-empty segment
	segAny              // "**": any number of segments
	segWild             // a segment with '*' inside: pieces between the stars
)

type globSeg struct {
	kind   globKind
	lit    string
	pieces []string
}

// compilePathGlob compiles a path pattern. Literal text is normalized the way
// canonicalization normalizes a path, so "/a%2db" and "/a-b" are the same
// pattern and a pattern can only match canonical paths.
func compilePathGlob(pattern string, fold bool) (*glob, error) {
	if !strings.HasPrefix(pattern, "/") {
		return nil, errors.New("must begin with /")
	}
	g := &glob{sep: '/', fold: fold}
	if len(pattern) > 1 {
		pattern = strings.TrimSuffix(pattern, "/")
	}
	for _, s := range strings.Split(pattern[1:], "/") {
		seg, err := compileSeg(s, func(lit string) (string, error) {
			if lit == "." || lit == ".." {
				return "", errors.New("dot segments cannot be matched")
			}
			var slash bool
			b, err := appendSegment(nil, lit, &slash)
			if err != nil {
				return "", err
			}
			return string(b), nil
		})
		if err != nil {
			return nil, err
		}
		g.segs = append(g.segs, seg)
	}
	for _, s := range g.segs {
		if s.kind == segLiteral && s.lit == "" && len(g.segs) > 1 {
			return nil, errors.New("empty segment (//) can never match a canonical path")
		}
	}
	for _, s := range g.segs {
		if s.kind != segLiteral || s.lit == "" {
			break
		}
		g.prefix += "/" + s.lit
	}
	return g, nil
}

// compileHostGlob compiles a host pattern such as "*.example.com". Hosts are
// matched in their canonical ASCII (punycode) form, without case.
func compileHostGlob(pattern string) (*glob, error) {
	if pattern == "" {
		return nil, errors.New("empty host pattern")
	}
	g := &glob{sep: '.', fold: true}
	for _, s := range strings.Split(pattern, ".") {
		seg, err := compileSeg(s, func(lit string) (string, error) {
			for i := 0; i < len(lit); i++ {
				c := lit[i]
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
					return "", fmt.Errorf("character %q is not allowed (write IDNs in punycode)", c)
				}
			}
			return strings.ToLower(lit), nil
		})
		if err != nil {
			return nil, err
		}
		if seg.kind == segLiteral && seg.lit == "" {
			return nil, errors.New("empty label")
		}
		g.segs = append(g.segs, seg)
	}
	return g, nil
}

func compileSeg(s string, literal func(string) (string, error)) (globSeg, error) {
	switch {
	case s == "*":
		return globSeg{kind: segStar}, nil
	case s == "**":
		return globSeg{kind: segAny}, nil
	case strings.Contains(s, "**"):
		return globSeg{}, fmt.Errorf("%q: ** must be a whole segment", s)
	case strings.Contains(s, "*"):
		parts := strings.Split(s, "*")
		for i, p := range parts {
			n, err := literal(p)
			if err != nil {
				return globSeg{}, fmt.Errorf("%q: %w", s, err)
			}
			parts[i] = n
		}
		return globSeg{kind: segWild, pieces: parts}, nil
	default:
		n, err := literal(s)
		if err != nil {
			return globSeg{}, fmt.Errorf("%q: %w", s, err)
		}
		return globSeg{kind: segLiteral, lit: n}, nil
	}
}

// match reports whether s matches. For paths, s is a canonical path starting
// with '/'; for hosts, a canonical host.
func (g *glob) match(s string) bool {
	if g.sep == '/' {
		if s == "" || s[0] != '/' {
			return false
		}
		if len(s) > 1 && s[len(s)-1] == '/' {
			s = s[:len(s)-1]
		}
		if p := g.prefix; p != "" {
			if len(s) < len(p) || !eq(s[:len(p)], p, g.fold) || len(s) > len(p) && s[len(p)] != '/' {
				return false
			}
		}
		s = s[1:]
	}
	end := len(s) + 1 // a segment starts before end
	next := func(i int) int {
		if j := strings.IndexByte(s[i:], g.sep); j >= 0 {
			return i + j + 1
		}
		return end
	}
	seg := func(i int) string {
		if j := strings.IndexByte(s[i:], g.sep); j >= 0 {
			return s[i : i+j]
		}
		return s[i:]
	}
	pi, si := 0, 0
	starP, starS := -1, 0
	for si < end || pi < len(g.segs) {
		if pi < len(g.segs) {
			if g.segs[pi].kind == segAny {
				starP, starS = pi, si
				pi++
				continue
			}
			if si < end && g.segs[pi].matchSeg(seg(si), g.fold) {
				pi++
				si = next(si)
				continue
			}
		}
		if starP >= 0 && starS < end {
			starS = next(starS)
			si, pi = starS, starP+1
			continue
		}
		return false
	}
	return true
}

func (s *globSeg) matchSeg(v string, fold bool) bool {
	switch s.kind {
	case segLiteral:
		if fold {
			return asciiEqualFold(s.lit, v)
		}
		return s.lit == v
	case segStar:
		return v != ""
	default:
		return v != "" && wildMatch(s.pieces, v, fold)
	}
}

// wildMatch matches v against pieces that were separated by '*'.
func wildMatch(pieces []string, v string, fold bool) bool {
	first, last := pieces[0], pieces[len(pieces)-1]
	if len(v) < len(first) || !eq(v[:len(first)], first, fold) {
		return false
	}
	v = v[len(first):]
	for _, p := range pieces[1 : len(pieces)-1] {
		i := index(v, p, fold)
		if i < 0 {
			return false
		}
		v = v[i+len(p):]
	}
	return len(v) >= len(last) && eq(v[len(v)-len(last):], last, fold)
}

func eq(a, b string, fold bool) bool {
	if fold {
		return asciiEqualFold(a, b)
	}
	return a == b
}

func index(s, sub string, fold bool) int {
	if !fold {
		return strings.Index(s, sub)
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		if asciiEqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
