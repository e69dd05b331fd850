package policy

import "strings"

// defaultHeaders is the allowlist Service starts from: content negotiation
// and caching headers that carry no authority. Accept-Encoding is not among
// them: the host owns it (hostOwnedHeaders). Nor is Range: against an
// origin that reflects the credential it gets, ranges would let a model
// read it back a few bytes at a time, each piece too short for the scrubber
// to know (docs/redteam.md); a service that serves ranges adds "range".
var defaultHeaders = []string{
	"accept", "accept-language", "cache-control", "content-type",
	"if-match", "if-modified-since", "if-none-match", "if-unmodified-since",
	"user-agent",
}

// methodOverrideHeaders make many frameworks run another method than the one
// the request line says, so a rule about methods would not hold.
var methodOverrideHeaders = []string{"x-http-method-override", "x-http-method", "x-method-override"}

// hostOwnedHeaders and hostOwnedPrefixes are the header names the host
// owns: framing, routing and hop-by-hop fields, and Accept-Encoding, which
// decides whether the response comes back in an encoding the host would have
// to decode before it could scrub secrets from it (Go's transport decodes
// gzip only when it asked for it itself). No allowlist may pass them, and a
// host refuses a fetch effect that carries one (HostOwnedHeader), in case a
// module bypasses the engine. worker/headers.js holds the same lists for the
// Workers host; TestHostOwnedHeadersMatchTheWorker keeps them equal.
var (
	hostOwnedHeaders = []string{
		"accept-encoding", "connection", "content-length", "expect", "forwarded",
		"host", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "via",
	}
	hostOwnedPrefixes = []string{"proxy-", "x-forwarded-"}
)

// HostOwnedHeader reports whether name (in any case) is a header only the
// host may set: no policy allows it, and a host refuses a fetch effect that
// carries it rather than let the module address or frame the request.
func HostOwnedHeader(name string) bool {
	if containsFold(hostOwnedHeaders, name) {
		return true
	}
	for _, p := range hostOwnedPrefixes {
		if len(name) >= len(p) && asciiEqualFold(name[:len(p)], p) {
			return true
		}
	}
	return false
}

type headerScan struct {
	// contentType is the request's Content-Type; ambiguousType when it
	// has more than one, which body matchers then cannot read.
	contentType string
	override    string // lower-case name of a method-override header present
}

const ambiguousType = "multiple Content-Type headers"

// scanHeaders validates the request's headers and notes what the decision
// needs from them.
func scanHeaders(h []Header) (headerScan, Reason) {
	var s headerScan
	for i := range h {
		name, value := h[i].Name, h[i].Value
		if !validHeaderName(name) || !validHeaderValue(value) {
			return s, ReasonBadHeader
		}
		if strings.Contains(value, "${") {
			// Only the engine writes placeholders; one from the caller would
			// ask the host for a secret the agent chose where to put.
			return s, ReasonPlaceholder
		}
		switch {
		case asciiEqualFold(name, "content-type"):
			if s.contentType != "" {
				// Servers pick the first, the last, or join them.
				value = ambiguousType
			}
			s.contentType = value
		case s.override == "":
			for _, o := range methodOverrideHeaders {
				if asciiEqualFold(name, o) {
					s.override = o
				}
			}
		}
	}
	return s, ""
}

func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if strings.IndexByte("!#$%&'*+-.^_`|~", c) < 0 {
			return false
		}
	}
	return true
}

func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// appendAllowed appends the headers of h that the allowlist or the rule
// names, except those the service's credentials replace.
func appendAllowed(dst, h []Header, allow, extra, replaced []string) []Header {
	for _, f := range h {
		if containsFold(replaced, f.Name) {
			continue
		}
		if containsFold(allow, f.Name) || containsFold(extra, f.Name) {
			dst = append(dst, f)
		}
	}
	return dst
}

func containsFold(list []string, name string) bool {
	for _, l := range list {
		if asciiEqualFold(l, name) {
			return true
		}
	}
	return false
}
