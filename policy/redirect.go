package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ResolveReference resolves a redirect's Location against the canonical URL
// of the request that received it, and returns the canonical URL of the next
// hop. The next hop is a new request: decide it with Evaluate like any
// other, so a redirect never reaches somewhere the policy does not allow.
//
// Locations that parsers resolve differently are errors: a backslash,
// control characters, or a scheme not followed by "//" ("https:evil.test"
// is a path to WHATWG and a host to others).
func ResolveReference(base, location string) (string, error) {
	var scratch [512]byte
	b, err := canonicalize(base, scratch[:0])
	if err != nil || b.url != base {
		return "", fmt.Errorf("policy: resolve %q: base %q is not a canonical URL", location, base)
	}
	abs, err := resolve(&b, location)
	if err != nil {
		return "", fmt.Errorf("policy: resolve %q against %s: %w", location, base, err)
	}
	u, err := canonicalize(abs, nil)
	if err != nil {
		return "", fmt.Errorf("policy: resolve %q against %s: %w", location, base, err)
	}
	return u.url, nil
}

func resolve(b *urlParts, ref string) (string, error) {
	if ref == "" {
		return "", errors.New("empty Location")
	}
	for i := 0; i < len(ref); i++ {
		if c := ref[i]; c <= ' ' || c == 0x7f {
			return "", errControl
		} else if c == '\\' {
			return "", errBackslash
		}
	}
	if i := strings.IndexAny(ref, ":/?#"); i > 0 && ref[i] == ':' {
		return ref, nil // absolute; canonicalize checks the scheme
	}
	switch {
	case strings.HasPrefix(ref, "//"):
		return b.url[:strings.Index(b.url, "//")] + ref, nil
	case ref[0] == '/':
		return b.origin() + ref, nil
	case ref[0] == '?':
		return b.url[:b.pathEnd] + ref, nil
	case ref[0] == '#':
		return b.url, nil
	}
	dir := b.path()
	dir = dir[:strings.LastIndexByte(dir, '/')+1]
	return b.origin() + dir + ref, nil
}
