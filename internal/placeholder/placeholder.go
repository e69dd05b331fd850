// Package placeholder is the grammar of secret placeholders in credential
// header values: ${secret:NAME} and ${basic:USER:NAME}. The policy engine
// checks credential templates with it and the hosts substitute with it, so
// no text can be a placeholder to one and plain text to the other.
// worker/secrets.js follows the same grammar.
package placeholder

import (
	"fmt"
	"strings"
)

// Placeholder is one placeholder found in a value.
type Placeholder struct {
	Start, End int // byte range in the value, End exclusive
	// Basic is set for ${basic:USER:NAME}: the value is "Basic " and the
	// base64 of "USER:secret".
	Basic bool
	User  string
	Name  string // the secret's name
}

// MaxNameLen bounds a secret name and a Basic user name.
const MaxNameLen = 64

// Parse calls fn for each placeholder of v, in order, and stops at fn's
// first error. Any "${" that does not begin a well-formed placeholder is an
// error.
func Parse(v string, fn func(Placeholder) error) error {
	for i := 0; i < len(v); {
		j := strings.Index(v[i:], "${")
		if j < 0 {
			return nil
		}
		start := i + j
		end := strings.IndexByte(v[start:], '}')
		if end < 0 {
			return fmt.Errorf("unterminated placeholder at byte %d", start)
		}
		end += start + 1
		body := v[start+2 : end-1]
		p := Placeholder{Start: start, End: end}
		switch {
		case strings.HasPrefix(body, "secret:"):
			p.Name = body[len("secret:"):]
		case strings.HasPrefix(body, "basic:"):
			rest := body[len("basic:"):]
			k := strings.IndexByte(rest, ':')
			if k < 0 {
				return fmt.Errorf("placeholder %q: want ${basic:USER:NAME}", v[start:end])
			}
			p.Basic, p.User, p.Name = true, rest[:k], rest[k+1:]
			if !validBasicUser(p.User) {
				return fmt.Errorf("placeholder %q: user must be [A-Za-z0-9._-]{1,64}", v[start:end])
			}
		default:
			return fmt.Errorf("placeholder %q: want ${secret:NAME} or ${basic:USER:NAME}", v[start:end])
		}
		if !ValidName(p.Name) {
			return fmt.Errorf("placeholder %q: secret name must be [A-Z][A-Z0-9_]{0,63}", v[start:end])
		}
		if err := fn(p); err != nil {
			return err
		}
		i = end
	}
	return nil
}

// ValidName reports whether n is a secret name: [A-Z][A-Z0-9_]{0,63}.
func ValidName(n string) bool {
	if n == "" || len(n) > MaxNameLen || n[0] < 'A' || n[0] > 'Z' {
		return false
	}
	for i := 1; i < len(n); i++ {
		if c := n[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func validBasicUser(u string) bool {
	if u == "" || len(u) > MaxNameLen {
		return false
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
