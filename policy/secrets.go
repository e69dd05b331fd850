package policy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// A placeholder in a credential value. user is set for basic.
type placeholder struct {
	start, end int // byte range in the value
	basic      bool
	user       string
	name       string
}

const maxNameLen = 64

// parsePlaceholders finds the placeholders of v. Any "${" that does not
// begin a well-formed placeholder is an error, so no text can be read as a
// placeholder by one implementation and as plain text by another.
func parsePlaceholders(v string, fn func(placeholder) error) error {
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
		p := placeholder{start: start, end: end}
		switch {
		case strings.HasPrefix(body, "secret:"):
			p.name = body[len("secret:"):]
		case strings.HasPrefix(body, "basic:"):
			rest := body[len("basic:"):]
			k := strings.IndexByte(rest, ':')
			if k < 0 {
				return fmt.Errorf("placeholder %q: want ${basic:USER:NAME}", v[start:end])
			}
			p.basic, p.user, p.name = true, rest[:k], rest[k+1:]
			if !validBasicUser(p.user) {
				return fmt.Errorf("placeholder %q: user must be [A-Za-z0-9._-]{1,64}", v[start:end])
			}
		default:
			return fmt.Errorf("placeholder %q: want ${secret:NAME} or ${basic:USER:NAME}", v[start:end])
		}
		if !validSecretName(p.name) {
			return fmt.Errorf("placeholder %q: secret name must be [A-Z][A-Z0-9_]{0,63}", v[start:end])
		}
		if err := fn(p); err != nil {
			return err
		}
		i = end
	}
	return nil
}

func validSecretName(n string) bool {
	if n == "" || len(n) > maxNameLen || n[0] < 'A' || n[0] > 'Z' {
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
	if u == "" || len(u) > maxNameLen {
		return false
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Owners says which secrets an origin may receive. An *Engine is one: an
// origin owns the secrets of the service it belongs to.
type Owners interface {
	// Owns reports whether a request to origin ("scheme://host[:port]",
	// canonical) may carry the secret name.
	Owns(origin, name string) bool
}

// ErrNotOwned is wrapped by Substitute's error when a header asks for a
// secret that the request's origin does not own.
var ErrNotOwned = errors.New("secret not owned by the origin")

// Substitute returns headers with every placeholder replaced by its secret,
// for the host to call at send time. It refuses, with an error wrapping
// ErrNotOwned, a placeholder for a secret that origin does not own, and
// fails on a secret lookup cannot find or a malformed placeholder. Callers
// pass the origin of the URL they are about to send.
func Substitute(headers []Header, origin string, owners Owners, lookup func(name string) (string, bool)) ([]Header, error) {
	out := make([]Header, len(headers))
	for i, h := range headers {
		var b strings.Builder
		last := 0
		err := parsePlaceholders(h.Value, func(p placeholder) error {
			if !owners.Owns(origin, p.name) {
				return fmt.Errorf("secret %s for %s: %w", p.name, origin, ErrNotOwned)
			}
			val, ok := lookup(p.name)
			if !ok {
				return fmt.Errorf("secret %s is not configured", p.name)
			}
			b.WriteString(h.Value[last:p.start])
			if p.basic {
				b.WriteString("Basic ")
				b.WriteString(base64.StdEncoding.EncodeToString([]byte(p.user + ":" + val)))
			} else {
				b.WriteString(val)
			}
			last = p.end
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("policy: substitute header %s: %w", h.Name, err)
		}
		b.WriteString(h.Value[last:])
		v := b.String()
		if !validHeaderValue(v) {
			return nil, fmt.Errorf("policy: substitute header %s: a secret holds a control character", h.Name)
		}
		out[i] = Header{Name: h.Name, Value: v}
	}
	return out, nil
}

// Secret is a secret value and the ways a request can carry it, for a
// Scrubber.
type Secret struct {
	Name  string
	Value string
	// BasicUsers are the user names it is sent with in HTTP Basic
	// credentials.
	BasicUsers []string
}

// Scrubber removes secret values from what the host hands back to the
// module: response headers and bodies, error messages. It finds each value
// raw, percent-encoded (as RFC 3986, HTML forms, Go's url.PathEscape and
// JavaScript's encodeURIComponent write it), JSON-escaped and base64
// encoded (alone, and as "USER:value" for each Basic user), and replaces it
// with "[REDACTED:NAME]". A value split across two chunks of a stream is
// only found if the caller scrubs with an overlap of MaxLen()-1 bytes.
//
// It also finds a value base64-encoded inside a longer text, as an endpoint
// that echoes the Authorization header it received (or a JSON document
// holding it) in base64 writes it: the value then starts at any of the
// three byte offsets of a base64 group and is followed by more. For each
// offset it looks for the "core", the base64 characters that depend on the
// value's bytes alone, in the standard and URL-safe alphabets, and replaces
// that (the characters around it, mixed with the neighbouring bytes, stay).
// It does so for the value, its JSON-escaped form, and for each Basic user
// "USER:value" and the base64 text of it that the header carries. A core
// shorter than MinBase64Core characters is not looked for, as it could
// match unrelated base64 by chance: so a text of 9 bytes is found this way
// only at offset 0, and one of 8 bytes or fewer only as above (a value raw,
// escaped, or base64 as a whole).
type Scrubber struct {
	r      *strings.Replacer
	maxLen int
}

// NewScrubber builds a Scrubber for secrets. Empty values are ignored.
func NewScrubber(secrets ...Secret) *Scrubber {
	type pair struct{ find, name string }
	var pairs []pair
	seen := map[string]bool{}
	add := func(find, name string) {
		if find != "" && !seen[find] {
			seen[find] = true
			pairs = append(pairs, pair{find, name})
		}
	}
	for _, s := range secrets {
		if s.Value == "" {
			continue
		}
		add(s.Value, s.Name)
		for _, keep := range escapeStyles {
			add(escape(s.Value, keep), s.Name)
		}
		add(jsonEscape(s.Value), s.Name)
		add(base64.StdEncoding.EncodeToString([]byte(s.Value)), s.Name)
		add(base64.RawURLEncoding.EncodeToString([]byte(s.Value)), s.Name)
		for _, u := range s.BasicUsers {
			add(base64.StdEncoding.EncodeToString([]byte(u+":"+s.Value)), s.Name)
		}
		// The texts a request carries that a response may hold inside a
		// longer base64 text.
		inner := []string{s.Value, jsonEscape(s.Value)}
		for _, u := range s.BasicUsers {
			basic := u + ":" + s.Value
			inner = append(inner, basic, base64.StdEncoding.EncodeToString([]byte(basic)))
		}
		for _, t := range inner {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
				for k := range 3 {
					add(base64Core(enc, t, k), s.Name)
				}
			}
		}
	}
	// Longest first, so that an encoding that contains another value is
	// replaced whole.
	sort.SliceStable(pairs, func(i, j int) bool { return len(pairs[i].find) > len(pairs[j].find) })
	args := make([]string, 0, 2*len(pairs))
	sc := &Scrubber{}
	for _, p := range pairs {
		args = append(args, p.find, "[REDACTED:"+p.name+"]")
		sc.maxLen = max(sc.maxLen, len(p.find))
	}
	sc.r = strings.NewReplacer(args...)
	return sc
}

// MinBase64Core is the fewest characters of a base64 core (see Scrubber)
// that a Scrubber looks for: 12 characters are 72 bits of the value, which
// ordinary text does not hold by chance.
const MinBase64Core = 12

// base64Core returns the characters of enc's encoding of v, after k bytes
// (0 ≤ k < 3) of whatever precedes it in a base64 group, that depend on v's
// bytes alone, or "" when they are fewer than MinBase64Core. Character c
// holds bits [6c, 6c+6) of the input and v holds bits [8k, 8(k+len(v))),
// so the core runs from the first c with 6c ≥ 8k to the last with
// 6c+6 ≤ 8(k+len(v)).
func base64Core(enc *base64.Encoding, v string, k int) string {
	first, end := (8*k+5)/6, 8*(k+len(v))/6
	if end-first < MinBase64Core {
		return ""
	}
	buf := make([]byte, k+len(v)) // the k bytes before v are zeros: they do not reach the core
	copy(buf[k:], v)
	return enc.EncodeToString(buf)[first:end]
}

// MaxLen is the length of the longest text the scrubber looks for.
func (s *Scrubber) MaxLen() int { return s.maxLen }

// String returns v with every secret replaced.
func (s *Scrubber) String(v string) string { return s.r.Replace(v) }

// Bytes returns b with every secret replaced.
func (s *Scrubber) Bytes(b []byte) []byte { return []byte(s.r.Replace(string(b))) }

// Headers returns a copy of h with every secret replaced in names and values.
func (s *Scrubber) Headers(h []Header) []Header {
	out := make([]Header, len(h))
	for i, f := range h {
		out[i] = Header{Name: s.r.Replace(f.Name), Value: s.r.Replace(f.Value)}
	}
	return out
}

// escapeStyles are the characters common encoders leave alone besides the
// unreserved ones; "+" in the first place means a space is written as '+'.
var escapeStyles = []string{
	"",         // RFC 3986 strict
	"+",        // forms, Go's url.QueryEscape
	"$&+,:;=@", // Go's url.PathEscape
	"!'()*",    // JavaScript's encodeURIComponent
}

// escape percent-encodes v, leaving unreserved characters and keep alone.
func escape(v, keep string) string {
	plusForSpace := keep == "+"
	var b []byte
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isUnreserved(c):
			b = append(b, c)
		case plusForSpace && c == ' ':
			b = append(b, '+')
		case !plusForSpace && strings.IndexByte(keep, c) >= 0:
			b = append(b, c)
		default:
			b = appendPct(b, c)
		}
	}
	return string(b)
}

// jsonEscape writes v the way encoding/json escapes a string's contents.
func jsonEscape(v string) string {
	const hex = "0123456789abcdef"
	var b []byte
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '<' || c == '>' || c == '&' || c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
