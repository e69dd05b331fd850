package policy

import (
	"fmt"
	"strings"
)

// Reason says why a request was allowed or denied. It is stable text, for
// events and for callers that branch on it.
type Reason string

// Reasons for an allow.
const (
	ReasonAllowRule  Reason = "allow-rule"  // an allow rule matched
	ReasonAllowLevel Reason = "allow-level" // no rule matched; the level allows
)

// Reasons for a denial. With Decision.Report set, the request was allowed
// anyway and the reason is what would have denied it.
const (
	ReasonDenyRule       Reason = "deny-rule"       // a deny rule matched
	ReasonDenyLevel      Reason = "deny-level"      // no rule matched; the level denies
	ReasonLimit          Reason = "limit"           // the matching allow rule's limit is used up
	ReasonNoService      Reason = "no-service"      // the origin belongs to no service
	ReasonMethodOverride Reason = "method-override" // a method-override header no rule names
)

// Reasons that deny even in report mode: the request cannot be sent safely
// at all.
const (
	ReasonBadURL       Reason = "bad-url"       // no canonical form; see Detail
	ReasonBadMethod    Reason = "bad-method"    // not a method we send
	ReasonBadHeader    Reason = "bad-header"    // a malformed header name or value
	ReasonPlaceholder  Reason = "placeholder"   // a request header holds "${": only credentials may
	ReasonIPLiteral    Reason = "ip-literal"    // an IP address no service names
	ReasonEncodedSlash Reason = "encoded-slash" // %2F in the path of a service that does not keep it opaque
)

// Decision is the engine's answer for one request. It never holds a secret:
// credentials appear as placeholders for the host to substitute.
type Decision struct {
	// Allow says whether the host may send the request.
	Allow bool `json:"allow"`
	// Report is set when the request was allowed only because of report
	// mode; Reason and Rule then say what would have denied it.
	Report bool   `json:"report,omitempty"`
	Reason Reason `json:"reason"`
	// Detail explains ReasonBadURL, ReasonNoService and a read with a body
	// that level allow-read denies, in words.
	Detail string `json:"detail,omitempty"`
	// Service is the service the origin belongs to, if any.
	Service string `json:"service,omitempty"`
	// Rule is the id of the deciding rule; empty when the level decided.
	Rule string `json:"rule,omitempty"`
	// Method is the canonical method to send.
	Method string `json:"method,omitempty"`
	// URL is the canonical URL, the exact URL to send; empty when the
	// request's URL has no canonical form.
	URL string `json:"url,omitempty"`
	// Headers are the headers to send: the request's allowed headers
	// followed by the service's credentials. Only set on an allow.
	Headers []Header `json:"headers,omitempty"`
	// Counter is the rule id whose count the caller increments once the
	// request is sent; empty when the deciding rule has no limit.
	Counter string `json:"counter,omitempty"`
}

// Err returns nil for an allowed request and a *DenyError otherwise.
func (d *Decision) Err() error {
	if d.Allow {
		return nil
	}
	return &DenyError{Decision: *d}
}

// DenyError is the error for a denied request, carrying the decision so
// callers can branch on its Reason.
type DenyError struct {
	Decision Decision
}

func (e *DenyError) Error() string {
	d := &e.Decision
	var b strings.Builder
	fmt.Fprintf(&b, "policy: denied %s", d.Method)
	if d.URL != "" {
		fmt.Fprintf(&b, " %s", d.URL)
	}
	fmt.Fprintf(&b, ": %s", d.Reason)
	if d.Detail != "" {
		fmt.Fprintf(&b, " (%s)", d.Detail)
	}
	if d.Service != "" {
		fmt.Fprintf(&b, ", service %s", d.Service)
	}
	if d.Rule != "" {
		fmt.Fprintf(&b, ", rule %s", d.Rule)
	}
	return b.String()
}
