package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/damperdev/damper/internal/placeholder"
)

// New builds a policy from services and checks it the way Compile does, so an
// agent's policy fails at registration rather than at its first request.
func New(services ...*ServiceBuilder) (Policy, error) {
	p := Policy{Version: Version, Services: []Service{}}
	for _, b := range services {
		s, err := b.Build()
		if err != nil {
			return Policy{}, err
		}
		p.Services = append(p.Services, s)
	}
	if _, err := Compile(p); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// ServiceBuilder builds a Service. Its methods return the builder so calls
// chain; the first mistake is reported by Build.
type ServiceBuilder struct {
	s   Service
	err error
}

// NewService starts a service for any API: its name and target origin
// ("https://api.example.com"). It starts at level DenyAll with a header
// allowlist of content negotiation and caching headers.
func NewService(name, target string) *ServiceBuilder {
	b := &ServiceBuilder{s: Service{Name: name, Level: DenyAll, Headers: slices.Clone(defaultHeaders)}}
	u, err := canonicalTarget(target)
	if err != nil {
		b.fail(err)
	} else {
		b.s.Target = u.origin()
	}
	return b
}

func (b *ServiceBuilder) fail(err error) {
	if b.err == nil {
		b.err = fmt.Errorf("policy: service %s: %w", b.s.Name, err)
	}
}

// Level sets the base level.
func (b *ServiceBuilder) Level(l Level) *ServiceBuilder {
	b.s.Level = l
	return b
}

// Report puts the service in report mode.
func (b *ServiceBuilder) Report() *ServiceBuilder {
	b.s.Mode = Report
	return b
}

// Hosts adds host globs the service spans besides its target's host.
func (b *ServiceBuilder) Hosts(globs ...string) *ServiceBuilder {
	b.s.Hosts = append(b.s.Hosts, globs...)
	return b
}

// Secrets adds secret names the service owns. Credential adds the names it
// uses by itself.
func (b *ServiceBuilder) Secrets(names ...string) *ServiceBuilder {
	for _, n := range names {
		if !slices.Contains(b.s.Secrets, n) {
			b.s.Secrets = append(b.s.Secrets, n)
		}
	}
	return b
}

// Credential adds a header the host sets on every allowed request, such as
// ("Authorization", "Bearer ${secret:API_TOKEN}"), and makes the service own
// the secrets its placeholders name.
func (b *ServiceBuilder) Credential(header, value string) *ServiceBuilder {
	err := placeholder.Parse(value, func(p placeholder.Placeholder) error {
		b.Secrets(p.Name)
		return nil
	})
	if err != nil {
		b.fail(fmt.Errorf("credential %s: %w", header, err))
	}
	b.s.Credentials = append(b.s.Credentials, Credential{Header: header, Value: value})
	return b
}

// Headers replaces the header allowlist.
func (b *ServiceBuilder) Headers(names ...string) *ServiceBuilder {
	b.s.Headers = slices.Clone(names)
	return b
}

// AddHeaders adds names to the header allowlist.
func (b *ServiceBuilder) AddHeaders(names ...string) *ServiceBuilder {
	b.s.Headers = append(b.s.Headers, names...)
	return b
}

// CaseInsensitivePaths makes path globs ignore ASCII case.
func (b *ServiceBuilder) CaseInsensitivePaths() *ServiceBuilder {
	b.s.CaseInsensitivePaths = true
	return b
}

// OpaqueEncodedSlash lets paths hold %2F as part of a segment.
func (b *ServiceBuilder) OpaqueEncodedSlash() *ServiceBuilder {
	b.s.OpaqueEncodedSlash = true
	return b
}

// Deny adds deny rules.
func (b *ServiceBuilder) Deny(rules ...*RuleBuilder) *ServiceBuilder {
	for _, r := range rules {
		if r.err != nil {
			b.fail(r.err)
		}
		b.s.Deny = append(b.s.Deny, r.r)
	}
	return b
}

// Allow adds allow rules, checked in the order added.
func (b *ServiceBuilder) Allow(rules ...*RuleBuilder) *ServiceBuilder {
	for _, r := range rules {
		if r.err != nil {
			b.fail(r.err)
		}
		b.s.Allow = append(b.s.Allow, r.r)
	}
	return b
}

// Build returns the service, or the first mistake made building it.
func (b *ServiceBuilder) Build() (Service, error) {
	if b.err != nil {
		return Service{}, b.err
	}
	p := Policy{Version: Version, Services: []Service{b.s}}
	if _, err := Compile(p); err != nil {
		return Service{}, err
	}
	return cloneService(b.s), nil
}

func cloneService(s Service) Service {
	data, _ := json.Marshal(s) // a Service always marshals
	var c Service
	_ = json.Unmarshal(data, &c)
	return c
}

// RuleBuilder builds a Rule.
type RuleBuilder struct {
	r   Rule
	err error
}

// On starts a rule for a path glob and the methods it matches (none: any
// method). "*" matches one path segment, "**" any number.
func On(path string, methods ...string) *RuleBuilder {
	return &RuleBuilder{r: Rule{Path: path, Methods: methods}}
}

// ID names the rule instead of deriving its id from its content.
func (r *RuleBuilder) ID(id string) *RuleBuilder {
	r.r.ID = id
	return r
}

// Host restricts the rule to hosts matching glob.
func (r *RuleBuilder) Host(glob string) *RuleBuilder {
	r.r.Host = glob
	return r
}

// Query requires the parameter key, each of whose values must be one of
// oneOf when oneOf is given. In a deny rule one value is enough. Query
// constraints hold for the query split on '&' and split on '&' and ';'
// (see the package documentation).
func (r *RuleBuilder) Query(key string, oneOf ...string) *RuleBuilder {
	r.r.Query = append(r.r.Query, QueryMatch{Key: key, OneOf: oneOf})
	return r
}

// QueryPattern requires the parameter key, each of whose values must match
// the RE2 pattern in full.
func (r *RuleBuilder) QueryPattern(key, pattern string) *RuleBuilder {
	r.r.Query = append(r.r.Query, QueryMatch{Key: key, Pattern: pattern})
	return r
}

// QueryAbsent requires that the parameter key does not appear.
func (r *RuleBuilder) QueryAbsent(key string) *RuleBuilder {
	r.r.Query = append(r.r.Query, QueryMatch{Key: key, Absent: true})
	return r
}

// JSON requires the JSON body to hold a value at pointer, equal to one of
// values when values are given (they are encoded with encoding/json).
func (r *RuleBuilder) JSON(pointer string, values ...any) *RuleBuilder {
	m := BodyMatch{Pointer: pointer}
	for _, v := range values {
		data, err := json.Marshal(v)
		if err != nil && r.err == nil {
			r.err = fmt.Errorf("policy: rule %s: JSON %s: %w", r.r.Path, pointer, err)
		}
		m.OneOf = append(m.OneOf, data)
	}
	if len(m.OneOf) == 1 {
		m.Equals, m.OneOf = m.OneOf[0], nil
	}
	r.r.Body = append(r.r.Body, m)
	return r
}

// JSONPattern requires the JSON body to hold a string at pointer that matches
// the RE2 pattern in full.
func (r *RuleBuilder) JSONPattern(pointer, pattern string) *RuleBuilder {
	r.r.Body = append(r.r.Body, BodyMatch{Pointer: pointer, Pattern: pattern})
	return r
}

// JSONAbsent requires that pointer names nothing in the JSON body.
func (r *RuleBuilder) JSONAbsent(pointer string) *RuleBuilder {
	r.r.Body = append(r.r.Body, BodyMatch{Pointer: pointer, Absent: true})
	return r
}

// GraphQL matches GraphQL requests by operation type ("query", "mutation",
// "subscription"). In an allow rule every operation must be of these types;
// in a deny rule any one is enough.
func (r *RuleBuilder) GraphQL(operations ...string) *RuleBuilder {
	if r.r.GraphQL == nil {
		r.r.GraphQL = &GraphQLMatch{}
	}
	r.r.GraphQL.Operations = append(r.r.GraphQL.Operations, operations...)
	return r
}

// GraphQLNames restricts GraphQL to operations with these names.
func (r *RuleBuilder) GraphQLNames(names ...string) *RuleBuilder {
	if r.r.GraphQL == nil {
		r.err = errors.Join(r.err, errors.New("policy: GraphQLNames needs GraphQL first"))
		return r
	}
	r.r.GraphQL.Names = append(r.r.GraphQL.Names, names...)
	return r
}

// Headers lets these headers through for requests the rule allows, on top
// of the service's allowlist. A method-override header is only sent when
// the deciding rule names it.
func (r *RuleBuilder) Headers(names ...string) *RuleBuilder {
	r.r.Headers = append(r.r.Headers, names...)
	return r
}

// Limit caps how many requests the rule allows per agent instance.
func (r *RuleBuilder) Limit(n int64) *RuleBuilder {
	r.r.Limit = n
	return r
}
