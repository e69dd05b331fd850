package policy

import (
	"strings"
)

// Request is an outbound HTTP request as the agent asked for it.
type Request struct {
	// Method is the HTTP method; empty means GET. Any case is accepted and
	// sent upper-case.
	Method  string
	URL     string
	Headers []Header
	Body    []byte
}

// Header is one request header field. A request may repeat a name.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Counters is the caller's view of how often each limited rule has allowed
// a request in this agent instance. The engine only reads it; after sending
// an allowed request, the caller increments Decision.Counter.
type Counters interface {
	Used(rule string) int64
}

// CounterMap is a Counters held in memory, keyed by rule id.
type CounterMap map[string]int64

// Used returns the count for rule.
func (m CounterMap) Used(rule string) int64 { return m[rule] }

// Evaluate decides req. counters may be nil when no rule has a limit.
func (e *Engine) Evaluate(req *Request, counters Counters) Decision {
	var d Decision
	e.EvaluateInto(&d, req, counters)
	return d
}

// EvaluateInto is Evaluate writing into d and reusing the capacity of
// d.Headers, so that a caller deciding many requests does not allocate for
// those that no body matcher inspects. d.Headers must not share memory with
// req.Headers.
func (e *Engine) EvaluateInto(d *Decision, req *Request, counters Counters) {
	*d = Decision{Headers: d.Headers[:0]}
	method, ok := canonicalMethod(req.Method)
	if !ok {
		d.Reason = ReasonBadMethod
		return
	}
	d.Method = method

	var scratch [512]byte
	u, err := canonicalize(req.URL, scratch[:0])
	if err != nil {
		d.Reason, d.Detail = ReasonBadURL, err.Error()
		return
	}
	if s, ok := e.moved[u.origin()]; ok && e.byOrigin[u.origin()] == nil {
		// Configuration moved this service: the request goes to its new
		// target, decided there. Only overridden policies pay this.
		if u, err = canonicalize(s.origin+u.url[u.pathStart:], nil); err != nil {
			d.Reason, d.Detail = ReasonBadURL, err.Error()
			return
		}
	}
	d.URL = u.url

	hs, reason := scanHeaders(req.Headers)
	if reason != "" {
		d.Reason = reason
		return
	}

	svc := e.lookup(&u)
	if svc == nil {
		if u.ip {
			d.Reason = ReasonIPLiteral
			return
		}
		d.Reason = ReasonNoService
		if _, ok := e.byHost[u.host()]; ok {
			d.Detail = "the scheme or port differs from the target of the service on this host"
		} else {
			d.Detail = "no service has this host"
		}
		if e.mode == Report {
			d.Allow, d.Report = true, true
			d.Headers = appendAllowed(d.Headers, req.Headers, defaultHeaders, nil, nil)
		}
		return
	}
	d.Service = svc.name
	if u.encodedSlash && !svc.opaqueSlash {
		d.Reason = ReasonEncodedSlash
		return
	}

	r, reason := svc.decide(method, &u, req.Body, hs, counters)
	d.Reason = reason
	if reason == ReasonDenyLevel && svc.level == AllowRead && readMethod(method) {
		d.Detail = "allow-read allows GET, HEAD and OPTIONS only without a body; an allow rule may allow this request"
	}
	if r != nil {
		d.Rule = r.id
		if reason == ReasonAllowRule && r.limit > 0 {
			d.Counter = r.id
		}
	}
	switch reason {
	case ReasonAllowRule, ReasonAllowLevel:
		d.Allow = true
	default:
		if !svc.report {
			return
		}
		d.Allow, d.Report = true, true
	}
	var extra []string
	if r != nil {
		extra = r.headers
	}
	d.Headers = appendAllowed(d.Headers, req.Headers, svc.headers, extra, svc.credNames)
	for _, c := range svc.creds {
		d.Headers = append(d.Headers, Header{Name: c.Header, Value: c.Value})
	}
}

// decide runs the rules: deny rules, then allow rules in order, then the
// level. It returns the deciding rule, if any, and why.
func (s *service) decide(method string, u *urlParts, body []byte, hs headerScan, counters Counters) (*rule, Reason) {
	host, path, query := u.host(), u.path(), u.query()
	rb := requestBody{raw: body, contentType: hs.contentType, urlQuery: query}
	for _, r := range s.deny {
		if r.matchHead(method, host, path, query, true) && r.matchBody(&rb, true) {
			return r, ReasonDenyRule
		}
	}
	var match *rule
	for _, r := range s.allow {
		if r.matchHead(method, host, path, query, false) && r.matchBody(&rb, false) {
			match = r
			break
		}
	}
	if match != nil {
		if hs.override != "" && !containsFold(match.headers, hs.override) {
			return match, ReasonMethodOverride
		}
		if match.limit > 0 && counters != nil && counters.Used(match.id) >= match.limit {
			return match, ReasonLimit
		}
		return match, ReasonAllowRule
	}
	if hs.override != "" {
		return nil, ReasonMethodOverride
	}
	switch s.level {
	case AllowAll:
		return nil, ReasonAllowLevel
	case AllowRead:
		// A read carries no body. Servers that read a GET body (search
		// APIs, GraphQL over GET, request smuggling through a proxy that
		// forwards it) would act on input the level never looked at; an
		// allow rule can still let such a request through.
		if readMethod(method) && len(body) == 0 {
			return nil, ReasonAllowLevel
		}
	}
	return nil, ReasonDenyLevel
}

// readMethod reports whether level allow-read may allow method.
func readMethod(m string) bool { return m == "GET" || m == "HEAD" || m == "OPTIONS" }

// matchHead matches everything but the body. deny says which way query
// constraints fail closed (queryMatcher.match).
func (r *rule) matchHead(method, host, path, query string, deny bool) bool {
	if !r.methods.has(method) {
		return false
	}
	if r.host != nil && !r.host.match(host) {
		return false
	}
	if !r.path.match(path) {
		return false
	}
	for i := range r.query {
		if !r.query[i].match(query, deny) {
			return false
		}
	}
	return true
}

// methodSet is a rule's methods: a bit per common method and a list for the
// rest. The empty set matches any method.
type methodSet struct {
	bits  uint8
	other []string
}

func methodBit(m string) uint8 {
	switch m {
	case "GET":
		return 1
	case "HEAD":
		return 2
	case "POST":
		return 4
	case "PUT":
		return 8
	case "PATCH":
		return 16
	case "DELETE":
		return 32
	case "OPTIONS":
		return 64
	}
	return 0
}

// add adds m and reports whether it was new.
func (s *methodSet) add(m string) bool {
	if b := methodBit(m); b != 0 {
		if s.bits&b != 0 {
			return false
		}
		s.bits |= b
		return true
	}
	if contains(s.other, m) {
		return false
	}
	s.other = append(s.other, m)
	return true
}

func (s *methodSet) has(m string) bool {
	if s.bits == 0 && s.other == nil {
		return true
	}
	if b := methodBit(m); b != 0 {
		return s.bits&b != 0
	}
	return contains(s.other, m)
}

func (e *Engine) lookup(u *urlParts) *service {
	if s, ok := e.byOrigin[u.origin()]; ok {
		return s
	}
	if u.ip {
		return nil
	}
	host, port := u.host(), u.port()
	for _, s := range e.spanning {
		if s.globHTTPS != u.https || s.globPort != port {
			continue
		}
		for _, g := range s.hostGlobs {
			if g.match(host) {
				return s
			}
		}
	}
	return nil
}

// canonicalMethod upper-cases a method. Methods are case-sensitive in HTTP,
// but fetch upper-cases some and not others; sending the upper-case form we
// decided on removes the difference.
func canonicalMethod(m string) (string, bool) {
	if m == "" {
		return "GET", true
	}
	if len(m) > 32 {
		return "", false
	}
	upper := true
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case c >= 'A' && c <= 'Z':
		case c >= 'a' && c <= 'z':
			upper = false
		default:
			return "", false
		}
	}
	if !upper {
		switch {
		case asciiEqualFold(m, "GET"):
			m = "GET"
		case asciiEqualFold(m, "POST"):
			m = "POST"
		case asciiEqualFold(m, "HEAD"):
			m = "HEAD"
		default:
			m = strings.ToUpper(m)
		}
	}
	switch m {
	case "CONNECT", "TRACE", "TRACK":
		// fetch refuses them, and they tunnel or reflect requests.
		return "", false
	}
	return m, true
}
