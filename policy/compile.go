package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/damperdev/damper/internal/placeholder"
	"github.com/damperdev/damper/policy/internal/graphql"
	"github.com/damperdev/damper/policy/internal/strictjson"
)

// Engine is a compiled policy: immutable, safe for concurrent use, and cheap
// to ask. Compile a policy once and keep the Engine.
type Engine struct {
	mode     Mode
	services []*service
	byOrigin map[string]*service
	byHost   map[string]*service
	spanning []*service // services with Hosts globs
	// moved maps the declared origin of a service whose target was
	// overridden (Policy.SetTarget) to the service.
	moved map[string]*service
}

type service struct {
	name        string
	origin      string
	host        string
	https       bool
	port        string
	hostGlobs   []*glob
	secrets     []string
	level       Level
	report      bool
	opaqueSlash bool
	headers     []string
	creds       []Credential
	credNames   []string
	basicUsers  map[string][]string
	deny, allow []*rule

	// globHTTPS and globPort are the scheme and port hostGlobs match on:
	// those of the target the policy declares, whatever an override says,
	// so an override moves exactly one origin.
	globHTTPS bool
	globPort  string
}

type rule struct {
	id      string
	methods methodSet
	host    *glob
	path    *glob
	query   []queryMatcher
	body    []bodyMatcher
	graphql *graphqlMatcher
	headers []string
	limit   int64
}

// Compile checks p and compiles it into an Engine. The error names the
// service, rule and field at fault.
func Compile(p Policy) (*Engine, error) {
	if p.Version != Version {
		return nil, fmt.Errorf("policy: unsupported version %d (this engine reads version %d)", p.Version, Version)
	}
	if err := checkMode(p.Mode); err != nil {
		return nil, fmt.Errorf("policy: mode: %w", err)
	}
	e := &Engine{
		mode:     p.Mode,
		byOrigin: map[string]*service{},
		byHost:   map[string]*service{},
	}
	ids := map[string]string{}
	for i := range p.Services {
		s, err := compileService(&p.Services[i], p.Mode, ids)
		if err != nil {
			return nil, fmt.Errorf("policy: services[%d] (%s): %w", i, p.Services[i].Name, err)
		}
		for _, o := range e.services {
			if o.name == s.name {
				return nil, fmt.Errorf("policy: services[%d]: name %q is used twice", i, s.name)
			}
		}
		if o, ok := e.byOrigin[s.origin]; ok {
			return nil, fmt.Errorf("policy: services[%d] (%s): target %s is already the target of %s", i, s.name, s.origin, o.name)
		}
		e.services = append(e.services, s)
		e.byOrigin[s.origin] = s
		if d := p.Services[i].declared; d != "" && d != s.origin {
			if e.moved == nil {
				e.moved = map[string]*service{}
			}
			e.moved[d] = s
		}
		e.byHost[s.host] = s
		if len(s.hostGlobs) > 0 {
			e.spanning = append(e.spanning, s)
		}
	}
	return e, nil
}

func checkMode(m Mode) error {
	switch m {
	case "", Enforce, Report:
		return nil
	}
	return fmt.Errorf("unknown mode %q (want %q or %q)", m, Enforce, Report)
}

// maxNameLen bounds service names and rule ids.
const maxNameLen = 64

func validServiceName(n string) bool {
	if n == "" || len(n) > maxNameLen || n[0] < 'a' || n[0] > 'z' {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// canonicalTarget parses a target, "scheme://host[:port]" optionally ending
// in '/', with no path, query or fragment. u.origin() is its canonical form.
func canonicalTarget(target string) (urlParts, error) {
	i := strings.Index(target, "://")
	if i < 0 {
		return urlParts{}, fmt.Errorf("target %q: want scheme://host[:port]", target)
	}
	rest := strings.TrimSuffix(target[i+3:], "/")
	if strings.ContainsAny(rest, "/?#") {
		return urlParts{}, fmt.Errorf("target %q: want scheme://host[:port] with no path, query or fragment", target)
	}
	u, err := canonicalize(target[:i+3]+rest+"/", nil)
	if err != nil {
		return urlParts{}, fmt.Errorf("target %q: %w", target, err)
	}
	return u, nil
}

func compileService(sp *Service, policyMode Mode, ids map[string]string) (*service, error) {
	if !validServiceName(sp.Name) {
		return nil, fmt.Errorf("name %q: want [a-z][a-z0-9-]{0,63}", sp.Name)
	}
	u, err := canonicalTarget(sp.Target)
	if err != nil {
		return nil, err
	}
	if u.origin() != sp.Target {
		return nil, fmt.Errorf("target %q is not canonical: write %q", sp.Target, u.origin())
	}
	s := &service{
		name:        sp.Name,
		origin:      u.origin(),
		host:        u.host(),
		https:       u.https,
		port:        u.port(),
		opaqueSlash: sp.OpaqueEncodedSlash,
		basicUsers:  map[string][]string{},
	}
	s.globHTTPS, s.globPort = s.https, s.port
	if sp.declared != "" {
		d, err := canonicalTarget(sp.declared)
		if err != nil {
			return nil, fmt.Errorf("declared target: %w", err)
		}
		s.globHTTPS, s.globPort = d.https, d.port()
	}
	for i, h := range sp.Hosts {
		g, err := compileHostGlob(h)
		if err != nil {
			return nil, fmt.Errorf("hosts[%d]: %w", i, err)
		}
		s.hostGlobs = append(s.hostGlobs, g)
	}
	for i, n := range sp.Secrets {
		if !placeholder.ValidName(n) {
			return nil, fmt.Errorf("secrets[%d]: %q: want [A-Z][A-Z0-9_]{0,63}", i, n)
		}
		if contains(s.secrets, n) {
			return nil, fmt.Errorf("secrets[%d]: %q is listed twice", i, n)
		}
		s.secrets = append(s.secrets, n)
	}
	if len(s.hostGlobs) > 0 && !s.globHTTPS && len(s.secrets) > 0 {
		// Only the exact target is named by whoever wrote the policy or
		// the configuration; a glob over plain http would send a
		// credential, in the clear, to any host DNS makes of it.
		return nil, errors.New("hosts: a service whose target is http cannot span hosts and own secrets: a credential goes over plain http only to the exact target")
	}
	switch sp.Level {
	case AllowRead, AllowAll, DenyAll:
		s.level = sp.Level
	default:
		return nil, fmt.Errorf("level %q: want %q, %q or %q", sp.Level, AllowRead, AllowAll, DenyAll)
	}
	if err := checkMode(sp.Mode); err != nil {
		return nil, fmt.Errorf("mode: %w", err)
	}
	s.report = sp.Mode == Report || (sp.Mode == "" && policyMode == Report)
	for i, h := range sp.Headers {
		l, err := allowedHeaderName(h)
		if err != nil {
			return nil, fmt.Errorf("headers[%d]: %w", i, err)
		}
		s.headers = append(s.headers, l)
	}
	for i, c := range sp.Credentials {
		l, err := allowedHeaderName(c.Header)
		if err != nil {
			return nil, fmt.Errorf("credentials[%d]: %w", i, err)
		}
		if containsFold(s.credNames, l) {
			return nil, fmt.Errorf("credentials[%d]: header %q is set twice", i, c.Header)
		}
		if !validHeaderValue(c.Value) {
			return nil, fmt.Errorf("credentials[%d]: value holds a control character", i)
		}
		err = placeholder.Parse(c.Value, func(p placeholder.Placeholder) error {
			for _, n := range s.secrets {
				if n == p.Name {
					if p.Basic && !contains(s.basicUsers[p.Name], p.User) {
						s.basicUsers[p.Name] = append(s.basicUsers[p.Name], p.User)
					}
					return nil
				}
			}
			return fmt.Errorf("secret %s is not in the service's secrets", p.Name)
		})
		if err != nil {
			return nil, fmt.Errorf("credentials[%d]: %w", i, err)
		}
		s.credNames = append(s.credNames, l)
		s.creds = append(s.creds, c)
	}
	for i := range sp.Deny {
		r, err := compileRule(&sp.Deny[i], sp, "deny", ids)
		if err != nil {
			return nil, fmt.Errorf("deny[%d]: %w", i, err)
		}
		if r.limit != 0 {
			return nil, fmt.Errorf("deny[%d]: a deny rule cannot have a limit", i)
		}
		s.deny = append(s.deny, r)
	}
	for i := range sp.Allow {
		r, err := compileRule(&sp.Allow[i], sp, "allow", ids)
		if err != nil {
			return nil, fmt.Errorf("allow[%d]: %w", i, err)
		}
		s.allow = append(s.allow, r)
	}
	return s, nil
}

func contains(list []string, v string) bool {
	for _, l := range list {
		if l == v {
			return true
		}
	}
	return false
}

func allowedHeaderName(h string) (string, error) {
	if !validHeaderName(h) {
		return "", fmt.Errorf("%q is not a header name", h)
	}
	l := strings.ToLower(h)
	if HostOwnedHeader(l) {
		return "", fmt.Errorf("%q is set by the host, never by a request", h)
	}
	return l, nil
}

// ruleID derives a rule's id from what it matches, so that it survives
// reordering and changes when the rule does (which resets its counter).
func ruleID(r *Rule, service, kind string) string {
	c := *r
	c.ID = ""
	data, _ := json.Marshal(c) // a Rule always marshals
	sum := sha256.Sum256([]byte(service + "\x00" + kind + "\x00" + string(data)))
	return kind + "-" + hex.EncodeToString(sum[:6])
}

func validRuleID(id string) bool {
	if id == "" || len(id) > maxNameLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if i == 0 || strings.IndexByte("._:-", c) < 0 {
			return false
		}
	}
	return true
}

func compileRule(rp *Rule, sp *Service, kind string, ids map[string]string) (*rule, error) {
	r := &rule{id: rp.ID, limit: rp.Limit}
	if r.id == "" {
		r.id = ruleID(rp, sp.Name, kind)
	} else if !validRuleID(r.id) {
		return nil, fmt.Errorf("id %q: want [A-Za-z0-9][A-Za-z0-9._:-]{0,63}", r.id)
	}
	where := sp.Name + " " + kind
	if prev, ok := ids[r.id]; ok {
		return nil, fmt.Errorf("id %q is already used by a rule of %s (identical rules derive the same id)", r.id, prev)
	}
	ids[r.id] = where
	if rp.Limit < 0 {
		return nil, fmt.Errorf("rule %s: negative limit", r.id)
	}
	for _, m := range rp.Methods {
		cm, ok := canonicalMethod(m)
		if !ok || cm != m || m == "" {
			return nil, fmt.Errorf("rule %s: method %q: want an upper-case method other than CONNECT, TRACE, TRACK", r.id, m)
		}
		if !r.methods.add(m) {
			return nil, fmt.Errorf("rule %s: method %s is listed twice", r.id, m)
		}
	}
	if rp.Host != "" {
		g, err := compileHostGlob(rp.Host)
		if err != nil {
			return nil, fmt.Errorf("rule %s: host %q: %w", r.id, rp.Host, err)
		}
		r.host = g
	}
	if rp.Path == "" {
		return nil, fmt.Errorf("rule %s: path is required (\"/**\" matches every path)", r.id)
	}
	g, err := compilePathGlob(rp.Path, sp.CaseInsensitivePaths)
	if err != nil {
		return nil, fmt.Errorf("rule %s: path %q: %w", r.id, rp.Path, err)
	}
	r.path = g
	for i, q := range rp.Query {
		m, err := compileQuery(q)
		if err != nil {
			return nil, fmt.Errorf("rule %s: query[%d]: %w", r.id, i, err)
		}
		r.query = append(r.query, m)
	}
	for i, b := range rp.Body {
		m, err := compileBody(b)
		if err != nil {
			return nil, fmt.Errorf("rule %s: body[%d]: %w", r.id, i, err)
		}
		r.body = append(r.body, m)
	}
	if rp.GraphQL != nil {
		m, err := compileGraphQL(rp.GraphQL)
		if err != nil {
			return nil, fmt.Errorf("rule %s: graphql: %w", r.id, err)
		}
		r.graphql = m
	}
	for i, h := range rp.Headers {
		l, err := allowedHeaderName(h)
		if err != nil {
			return nil, fmt.Errorf("rule %s: headers[%d]: %w", r.id, i, err)
		}
		r.headers = append(r.headers, l)
	}
	return r, nil
}

func compileRegexp(p string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + p + `)$`)
	if err != nil {
		return nil, fmt.Errorf("pattern: %w", err)
	}
	return re, nil
}

func compileQuery(q QueryMatch) (queryMatcher, error) {
	m := queryMatcher{key: q.Key, oneOf: q.OneOf, absent: q.Absent, optional: q.Optional}
	if q.Key == "" {
		return m, errors.New("key is required")
	}
	if len(q.OneOf) > 0 && q.Pattern != "" {
		return m, errors.New("set oneOf or pattern, not both")
	}
	if q.Absent && (len(q.OneOf) > 0 || q.Pattern != "" || q.Optional) {
		return m, errors.New("absent excludes oneOf, pattern and optional")
	}
	if q.Pattern != "" {
		re, err := compileRegexp(q.Pattern)
		if err != nil {
			return m, err
		}
		m.pattern = re
	}
	return m, nil
}

func compileBody(b BodyMatch) (bodyMatcher, error) {
	m := bodyMatcher{pointer: b.Pointer, absent: b.Absent}
	if !strictjson.ValidPointer(b.Pointer) {
		return m, fmt.Errorf("pointer %q is not a JSON pointer (RFC 6901)", b.Pointer)
	}
	set := 0
	for _, ok := range []bool{b.Equals != nil, b.OneOf != nil, b.Pattern != "", b.Absent} {
		if ok {
			set++
		}
	}
	if set > 1 {
		return m, errors.New("set at most one of equals, oneOf, pattern and absent")
	}
	values := b.OneOf
	if b.Equals != nil {
		values = []json.RawMessage{b.Equals}
	}
	for _, raw := range values {
		v, err := strictjson.Parse(raw)
		if err != nil {
			return m, fmt.Errorf("value %s: %w", raw, err)
		}
		m.oneOf = append(m.oneOf, v)
	}
	if b.Pattern != "" {
		re, err := compileRegexp(b.Pattern)
		if err != nil {
			return m, err
		}
		m.pattern = re
	}
	return m, nil
}

func compileGraphQL(g *GraphQLMatch) (*graphqlMatcher, error) {
	if len(g.Operations) == 0 {
		return nil, errors.New("operations is required")
	}
	m := &graphqlMatcher{names: g.Names}
	for _, op := range g.Operations {
		switch op {
		case graphql.Query, graphql.Mutation, graphql.Subscription:
			m.ops = append(m.ops, op)
		default:
			return nil, fmt.Errorf("operation %q: want query, mutation or subscription", op)
		}
	}
	return m, nil
}

// Owns reports whether a request to origin may carry the secret name: the
// origin belongs to a service that owns it.
func (e *Engine) Owns(origin, name string) bool {
	var scratch [256]byte
	u, err := canonicalize(origin+"/", scratch[:0])
	if err != nil || u.origin() != origin {
		return false
	}
	s := e.lookup(&u)
	return s != nil && contains(s.secrets, name)
}

// SecretUse is a secret a policy's services own, with the user names of
// the HTTP Basic credentials that send it, which the hosts must know to find
// it in what a server echoes back.
type SecretUse struct {
	Name       string
	BasicUsers []string
}

// Secrets lists the secrets the policy's services own, each once, in the
// order the policy names them.
func (e *Engine) Secrets() []SecretUse {
	var out []SecretUse
	seen := map[string]bool{}
	for _, s := range e.services {
		for _, n := range s.secrets {
			if !seen[n] {
				seen[n] = true
				out = append(out, SecretUse{Name: n, BasicUsers: e.basicUsers(n)})
			}
		}
	}
	return out
}

func (e *Engine) basicUsers(name string) []string {
	var users []string
	for _, s := range e.services {
		for _, u := range s.basicUsers[name] {
			if !contains(users, u) {
				users = append(users, u)
			}
		}
	}
	return users
}
