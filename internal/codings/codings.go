// Package codings holds the hosts' rule for the content codings of fetch
// responses (docs/abi.md, "Encodings"): the host asks every server for the
// identity coding, and a response that names any other coding is refused
// before a byte of its body is read. Secrets are scrubbed from a body as the
// guest receives it, so an encoded body would carry them past the scrubber;
// refusing unread also means no decompressor ever runs on a server's bytes
// (no decompression bomb, and none of workerd's decoders, one of which aborts
// the whole process under wrangler dev on a corrupt gzip body).
//
// The Workers host applies the same rule (worker/headers.js,
// contentCodings), held equal to this package by a test.
package codings

import (
	"fmt"
	"net/http"
	"strings"
)

// AcceptEncoding is the Accept-Encoding value the hosts send with every
// request: only the identity coding is acceptable (RFC 9110, 12.5.3). A
// server that honours it sends no Content-Encoding at all.
const AcceptEncoding = "identity"

// UnsupportedError reports a response whose Content-Encoding names a coding
// other than identity, or cannot be parsed. Its body was not read.
type UnsupportedError struct {
	// Value is the field's values as received, joined with ", ".
	Value string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("refusing a response with Content-Encoding %q: the host asks for identity and never decodes a body (an encoded body would carry secrets past the scrubber)", e.Value)
}

// Check returns nil when h's Content-Encoding says the body is as sent: no
// field, or only identity and empty list members. Anything else, in any
// letter case, over any number of field lines, is an *UnsupportedError.
func Check(h http.Header) error {
	values := h.Values("Content-Encoding")
	if len(values) == 0 {
		return nil
	}
	if cs, err := Parse(values); err == nil && len(cs) == 0 {
		return nil
	}
	return &UnsupportedError{Value: strings.Join(values, ", ")}
}

// Parse returns the content codings that Content-Encoding field values
// list, in the order they were applied, lower-cased, without identity (a
// no-op). The values of several field lines form one list (RFC 9110, 5.3);
// empty members and the blanks around members are skipped. A member that
// is not a token (RFC 9110, 5.6.2), such as "gzip;q=1", is an error.
func Parse(values []string) ([]string, error) {
	var out []string
	for _, v := range values {
		for m := range strings.SplitSeq(v, ",") {
			m = strings.Trim(m, " \t")
			if m == "" {
				continue
			}
			if !isToken(m) {
				return nil, fmt.Errorf("content coding %q is not a token", m)
			}
			if m = strings.ToLower(m); m != "identity" {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// isToken reports whether s is 1*tchar.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}
