// Package posixre translates POSIX regular expressions, basic (BRE, as
// grep and sed take them by default) and extended (ERE, grep -E, sed -E),
// with GNU's extensions, into Go's RE2 syntax, matching leftmost-longest
// as POSIX does.
//
// RE2 has no back-references: a pattern that uses one (\1) is refused with
// an error that says so.
package posixre

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrBackref is a pattern with a back-reference, which RE2 cannot match.
var ErrBackref = errors.New("back-references (\\1 ...) are not supported")

// Compile compiles a POSIX regular expression: extended when ere, with
// case folding when icase.
func Compile(expr string, ere, icase bool) (*regexp.Regexp, error) {
	s, err := Translate(expr, ere)
	if err != nil {
		return nil, err
	}
	if icase {
		s = "(?i)" + s
	}
	rx, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	rx.Longest()
	return rx, nil
}

// Translate rewrites expr into RE2 syntax.
func Translate(expr string, ere bool) (string, error) {
	var b []byte
	// atStart: a * here is literal in a BRE (nothing to repeat).
	atStart := true
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch c {
		case '[':
			end, ok := bracketEnd(expr, i)
			if !ok {
				return "", fmt.Errorf("unmatched [ in %q", expr)
			}
			b = append(b, bracket(expr[i:end+1])...)
			i = end
			atStart = false
			continue
		case '\\':
			if i+1 >= len(expr) {
				return "", fmt.Errorf("trailing backslash in %q", expr)
			}
			i++
			d := expr[i]
			switch {
			case d >= '1' && d <= '9':
				return "", ErrBackref
			case d == '<' || d == '>':
				b = append(b, `\b`...)
				continue
			case d == '`':
				b = append(b, `\A`...)
				continue
			case d == '\'':
				b = append(b, `\z`...)
				continue
			case strings.IndexByte("bBwWsSnt", d) >= 0:
				b = append(b, '\\')
				b = append(b, d)
				atStart = false
				continue
			case !ere && strings.IndexByte("(){}|+?", d) >= 0:
				// In a BRE these are the operators.
				b = append(b, d)
				atStart = d == '(' || d == '|'
				continue
			}
			b = append(b, regexp.QuoteMeta(string(d))...)
			atStart = false
			continue
		case '*':
			if atStart {
				b = append(b, `\*`...)
				atStart = false
				continue
			}
		case '^':
			if !ere && !atStart {
				b = append(b, `\^`...)
				continue
			}
			b = append(b, '^')
			continue // a * after ^ is still at the start
		case '$':
			if !ere && !atEnd(expr, i) {
				b = append(b, `\$`...)
				atStart = false
				continue
			}
		case '(', ')', '{', '}', '|', '+', '?':
			if !ere {
				b = append(b, '\\')
				b = append(b, c)
				atStart = false
				continue
			}
			if c == '{' && !validInterval(expr[i:]) {
				b = append(b, `\{`...)
				atStart = false
				continue
			}
			if c == '{' && strings.HasPrefix(expr[i:], "{,") {
				b = append(b, "{0"...) // GNU's {,n} is {0,n}; RE2 wants the 0
				continue
			}
			b = append(b, c)
			atStart = c == '(' || c == '|'
			if ere && (c == '*' || c == '+' || c == '?') {
				atStart = false
			}
			continue
		}
		b = append(b, c)
		atStart = false
	}
	return string(b), nil
}

// atEnd reports whether the $ at i ends the expression or a group of a BRE.
func atEnd(expr string, i int) bool {
	rest := expr[i+1:]
	return rest == "" || strings.HasPrefix(rest, `\)`) || strings.HasPrefix(rest, `\|`)
}

func validInterval(s string) bool {
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return false
	}
	body := s[1:end]
	if body == "" {
		return false
	}
	for _, c := range body {
		if (c < '0' || c > '9') && c != ',' {
			return false
		}
	}
	return body != ","
}

// bracketEnd finds the ] that closes the bracket expression at i.
func bracketEnd(expr string, i int) (int, bool) {
	j := i + 1
	if j < len(expr) && expr[j] == '^' {
		j++
	}
	if j < len(expr) && expr[j] == ']' {
		j++
	}
	for j < len(expr) {
		switch {
		case expr[j] == '[' && j+1 < len(expr) && (expr[j+1] == ':' || expr[j+1] == '.' || expr[j+1] == '='):
			end := strings.Index(expr[j+2:], string(expr[j+1])+"]")
			if end < 0 {
				return 0, false
			}
			j += end + 4
		case expr[j] == ']':
			return j, true
		default:
			j++
		}
	}
	return 0, false
}

// bracket rewrites a POSIX bracket expression for RE2, where a backslash
// is an escape: POSIX takes it literally.
func bracket(s string) string {
	inner := s[1 : len(s)-1]
	neg := strings.HasPrefix(inner, "^")
	if neg {
		inner = inner[1:]
	}
	var b []byte
	b = append(b, '[')
	if neg {
		b = append(b, '^')
	}
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c == '[' && i+1 < len(inner) && inner[i+1] == ':':
			end := strings.Index(inner[i:], ":]")
			b = append(b, inner[i:i+end+2]...)
			i += end + 1
		case c == '\\':
			// GNU sed reads \n, \t and \\ in brackets; others are literal.
			if i+1 < len(inner) && strings.IndexByte("nt\\]", inner[i+1]) >= 0 {
				b = append(b, '\\')
				b = append(b, inner[i+1])
				i++
				continue
			}
			b = append(b, `\\`...)
		case c == ']' && i == 0:
			b = append(b, `\]`...)
		case c == '[':
			b = append(b, `\[`...)
		default:
			b = append(b, c)
		}
	}
	b = append(b, ']')
	return string(b)
}
