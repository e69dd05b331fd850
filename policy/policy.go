package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/damperdev/damper/policy/internal/strictjson"
)

// Version is the policy format this package reads and writes. Parse refuses
// any other, so a module never enforces a policy it would misread.
const Version = 1

// Policy is the data an engine enforces: the same bytes give the same
// decisions on every host. Its JSON form is what a module's manifest lists.
type Policy struct {
	// Version must be Version.
	Version int `json:"version"`
	// Mode applies to every service that does not set its own, and to
	// requests that match no service. Empty means Enforce.
	Mode Mode `json:"mode,omitempty"`
	// Services are the APIs an agent may reach. A request whose origin
	// belongs to no service is denied.
	Services []Service `json:"services"`
}

// Level is what a service allows when no rule matched.
type Level string

// The base levels.
const (
	AllowRead Level = "allow-read" // GET, HEAD and OPTIONS only
	AllowAll  Level = "allow-all"
	DenyAll   Level = "deny-all"
)

// Mode says whether denials are enforced.
type Mode string

// The modes.
const (
	Enforce Mode = "enforce"
	// Report decides every request, reports what would be denied, and
	// allows it: for trying a policy out on real traffic.
	Report Mode = "report"
)

// Service is one API: where it is, the secrets it owns, the headers it
// accepts and the rules for its requests.
type Service struct {
	// Name identifies the service in decisions, events and configuration
	// overrides: lower-case letters, digits and '-'.
	Name string `json:"name"`
	// Target is the service's origin, "scheme://host[:port]" in canonical
	// form: https, or http for loopback fakes in tests. Configuration may
	// point it elsewhere (see Policy.SetTarget).
	Target string `json:"target"`
	// Hosts are more host globs the service spans, on the scheme and port
	// of Target as the policy declares it ("*.s3.example.com"), even when
	// configuration overrides the target. They never match an IP address.
	// A service with an http target cannot both span hosts and own
	// secrets.
	Hosts []string `json:"hosts,omitempty"`
	// Secrets names the secrets the service owns: the host substitutes a
	// secret only into requests to an origin of a service that owns it.
	Secrets []string `json:"secrets,omitempty"`
	// Level decides requests that no rule matched.
	Level Level `json:"level"`
	// Mode overrides the policy's mode for this service.
	Mode Mode `json:"mode,omitempty"`
	// CaseInsensitivePaths makes path globs match without ASCII case, for
	// APIs such as GitHub's whose owner and repository names ignore case.
	// Set it for every server that ignores case, or "/ADMIN" slips past a
	// deny rule for "/admin".
	CaseInsensitivePaths bool `json:"caseInsensitivePaths,omitempty"`
	// OpaqueEncodedSlash lets paths hold %2F, kept encoded and matched as
	// part of one segment (GitLab's "group%2Fproject"). Otherwise a path
	// with %2F is denied.
	OpaqueEncodedSlash bool `json:"opaqueEncodedSlash,omitempty"`
	// Headers is the request header allowlist (names, any case). Every
	// other header is stripped before sending; an empty list strips all.
	Headers []string `json:"headers,omitempty"`
	// Credentials are the headers the host adds after an allow, with
	// secret placeholders in their values.
	Credentials []Credential `json:"credentials,omitempty"`
	// Deny rules are checked first; any match denies.
	Deny []Rule `json:"deny,omitempty"`
	// Allow rules are checked in order; the first match allows, unless its
	// limit is used up.
	Allow []Rule `json:"allow,omitempty"`

	// declared is the target the policy was written with, kept by
	// SetTarget: requests the agent addresses there go to Target instead.
	// It is configuration, not policy data, so it is not serialized.
	declared string
}

// Credential is a header the host adds to every allowed request of a
// service, replacing any header of that name the request carried. Value
// holds placeholders (see the package documentation), never a secret.
type Credential struct {
	Header string `json:"header"`
	Value  string `json:"value"`
}

// Rule matches requests. Every field that is set must match.
type Rule struct {
	// ID names the rule in decisions and keys its counter. When empty, it
	// is derived from the rule's content and service, so it stays the same
	// as long as the rule does.
	ID string `json:"id,omitempty"`
	// Methods the rule matches, upper-case; empty matches any.
	Methods []string `json:"methods,omitempty"`
	// Host is a host glob, for services that span hosts; empty matches any
	// host of the service.
	Host string `json:"host,omitempty"`
	// Path is a path glob: "*" is one segment, "**" any number, "*" inside
	// a segment any run of characters. A trailing slash is not significant.
	Path string `json:"path"`
	// Query constraints, all of which must hold.
	Query []QueryMatch `json:"query,omitempty"`
	// Body matchers on the JSON body, all of which must hold.
	Body []BodyMatch `json:"body,omitempty"`
	// GraphQL matches the operations of a GraphQL request body.
	GraphQL *GraphQLMatch `json:"graphql,omitempty"`
	// Headers this rule lets through on top of the service's allowlist.
	// Naming a method-override header here is the only way to send one.
	Headers []string `json:"headers,omitempty"`
	// Limit, when positive, is how many requests the rule allows per agent
	// instance. Allow rules only.
	Limit int64 `json:"limit,omitempty"`
}

// QueryMatch constrains one query parameter, compared after decoding. With
// neither OneOf nor Pattern, the key only has to be present. In an allow
// rule every value of the key must satisfy the constraint, with the query
// split on '&' and with it split on '&' and ';'; in a deny rule one value
// under either splitting is enough.
type QueryMatch struct {
	Key string `json:"key"`
	// OneOf lists the accepted values.
	OneOf []string `json:"oneOf,omitempty"`
	// Pattern is an RE2 expression every value must match in full.
	Pattern string `json:"pattern,omitempty"`
	// Absent requires that the key does not appear.
	Absent bool `json:"absent,omitempty"`
	// Optional lets the key be missing; values that appear must still
	// match.
	Optional bool `json:"optional,omitempty"`
}

// BodyMatch constrains the value at a JSON pointer (RFC 6901) in a JSON body.
// Exactly one of Equals, OneOf, Pattern and Absent may be set; with none, the
// pointer only has to name a value.
type BodyMatch struct {
	Pointer string `json:"pointer"`
	// Equals is a JSON value; numbers compare by value, objects without
	// regard to key order.
	Equals json.RawMessage `json:"equals,omitempty"`
	// OneOf lists accepted JSON values.
	OneOf []json.RawMessage `json:"oneOf,omitempty"`
	// Pattern is an RE2 expression a string value must match in full.
	Pattern string `json:"pattern,omitempty"`
	// Absent requires that the pointer names nothing.
	Absent bool `json:"absent,omitempty"`
}

// GraphQLMatch matches the operations of a GraphQL request (a JSON object
// with a "query" document, or a batched array of them). Every operation of
// every document counts, whatever "operationName" says.
type GraphQLMatch struct {
	// Operations are the accepted operation types: "query", "mutation",
	// "subscription".
	Operations []string `json:"operations"`
	// Names, when set, are the accepted operation names; an anonymous
	// operation then does not fit.
	Names []string `json:"names,omitempty"`
}

// Parse decodes a policy strictly: unknown fields, duplicate keys, trailing
// data and another Version are errors. It does not compile the policy; see
// Compile.
func Parse(data []byte) (Policy, error) {
	var p Policy
	if err := p.UnmarshalJSON(data); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// UnmarshalJSON makes json.Unmarshal as strict as Parse, so a policy embedded
// in a manifest is read the same way.
func (p *Policy) UnmarshalJSON(data []byte) error {
	// Duplicate keys are refused because encoding/json keeps the last one
	// silently, which would let a reviewer read one rule and the engine
	// enforce another.
	if _, err := strictjson.Parse(data); err != nil {
		return fmt.Errorf("policy: decode: %w", err)
	}
	type plain Policy
	var v plain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("policy: decode: %w", err)
	}
	if v.Version != Version {
		return fmt.Errorf("policy: unsupported version %d (this engine reads version %d)", v.Version, Version)
	}
	*p = Policy(v)
	return nil
}

// SetTarget points a service at another origin, the way configuration
// overrides a target at deploy or run time (tests point presets at loopback
// fakes). The target must be "scheme://host[:port]". The agent's code stays
// as it is: a request to the origin the policy was written with is decided
// and sent as a request to the new target, same path and query
// (Decision.URL names the new origin). Only that origin moves: the
// service's Hosts globs keep matching the hosts they name on the declared
// target's scheme and port, never the new target's, so an override to
// plain http sends a credential over http only to the exact new target.
func (p *Policy) SetTarget(service, target string) error {
	u, err := canonicalTarget(target)
	if err != nil {
		return fmt.Errorf("policy: set target of %q: %w", service, err)
	}
	for i := range p.Services {
		if p.Services[i].Name == service {
			// Copy first: a Policy is a value, and a copy made before the
			// override must keep its own target.
			p.Services = slices.Clone(p.Services)
			if p.Services[i].declared == "" {
				p.Services[i].declared = p.Services[i].Target
			}
			p.Services[i].Target = u.origin()
			return nil
		}
	}
	return fmt.Errorf("policy: set target of %q: no such service", service)
}
