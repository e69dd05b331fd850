package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/internal/store"
)

// outReq is one outbound request as the policy sees it: what the agent
// asked for, or a redirect hop made from it.
type outReq struct {
	req     *http.Request // for the response's Request field
	method  string
	url     string
	headers []policy.Header // sorted by name, values in order
	body    []byte
	binding string // a Workers binding to call with the request instead of fetching it
}

// outbound reads req into an outReq, refusing what cannot be sent at all.
// Every outbound HTTP request of a run passes here, buffered (Fetch) or
// streamed (Transport), then send, as does every redirect hop Fetch
// follows: the policy decides each.
//
// It reads and closes req.Body.
func outbound(c *Context, req *http.Request) (*outReq, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if req.URL == nil {
		return nil, errors.New("fetch: request without a URL")
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return nil, fmt.Errorf("fetch %s %s: not an absolute http or https URL", method, req.URL)
	}
	if err := req.Context().Err(); err != nil {
		return nil, fmt.Errorf("fetch %s %s: %w", method, req.URL, err)
	}
	if err := c.Err(); err != nil {
		return nil, fmt.Errorf("fetch %s %s: the run is over: %w", method, req.URL, err)
	}
	o := &outReq{req: req, method: method, url: req.URL.String()}
	if len(req.Header) > 0 {
		names := make([]string, 0, len(req.Header))
		n := 0
		for name, vs := range req.Header {
			names = append(names, name)
			n += len(vs)
		}
		sort.Strings(names)
		o.headers = make([]policy.Header, 0, n)
		for _, name := range names {
			for _, v := range req.Header[name] {
				o.headers = append(o.headers, policy.Header{Name: name, Value: v})
			}
		}
	}
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, fmt.Errorf("fetch %s %s: read the request body: %w", method, o.url, err)
		}
		o.body = body
	}
	return o, nil
}

// send decides o with the agent's policy and, when it is allowed, sends
// exactly what the policy decided (canonical method and URL, allowed
// headers, credentials as placeholders the host fills in) as one fetch
// effect. It returns the fetch's value and the decision. A denial is an
// error wrapping the *policy.DenyError.
//
// Every decision is recorded with an event (policy.allow, policy.deny,
// policy.report: see package event). An allow's event goes to the host in
// the same batch as the fetch, so recording costs no round trip; the event
// is best effort: its failure fails nothing.
//
// A rule with a limit is counted in the agent instance's storage, where
// the count outlives module instances and restarts, on both hosts. The
// count is reserved before sending, by one atomic statement that returns
// it, and the request is decided on the count before it: concurrent
// requests of one run then each get their own count, and no interleaving
// lets more through than the limit. A request the reservation pushes over
// the limit is denied and its count taken back (in the same batch as the
// denial's event). A request handed to the host stays counted even when
// the host then fails it, since it may have reached the server.
func (c *Context) send(o *outReq, stream bool) (wire.FetchValue, policy.Decision, error) {
	var v wire.FetchValue
	d, args, err := c.decide(o, false)
	if err != nil {
		return v, d, err
	}
	args.Stream = stream
	if o.binding != "" {
		if err := sched.Perform(c.task, wire.EffectBinding, wire.BindingArgs{Binding: o.binding, FetchArgs: args}, &v); err != nil {
			return v, d, fmt.Errorf("binding %s: %s %s: %w", o.binding, args.Method, args.URL, err)
		}
		return v, d, nil
	}
	if err := sched.Perform(c.task, wire.EffectFetch, args, &v); err != nil {
		return v, d, fmt.Errorf("fetch %s %s: %w", args.Method, args.URL, err)
	}
	return v, d, nil
}

// decide decides o with the agent's policy, counts it when its rule has a
// limit, and emits the decision's event (egress.allow and egress.deny for
// a request of the sandbox itself, egress set). On an allow it returns
// the fetch to send, whose event joins the next batch; a denial is an
// error wrapping the *policy.DenyError.
func (c *Context) decide(o *outReq, egress bool) (policy.Decision, wire.FetchArgs, error) {
	var args wire.FetchArgs
	if err := c.Err(); err != nil {
		return policy.Decision{}, args, fmt.Errorf("fetch %s %s: the run is over: %w", o.method, o.url, err)
	}
	eng, err := c.policyEngine()
	if err != nil {
		return policy.Decision{}, args, fmt.Errorf("fetch %s %s: %w", o.method, o.url, err)
	}
	if eng == nil {
		d := policy.Decision{
			Reason: policy.ReasonNoService,
			Detail: fmt.Sprintf("agent %s has no policy: register it with agent.WithPolicy", c.Agent()),
			Method: strings.ToUpper(o.method),
		}
		if u, err := policy.Canonicalize(o.url); err == nil {
			d.URL = u
		}
		return d, args, c.deny(&d, o, "", egress)
	}

	preq := policy.Request{Method: o.method, URL: o.url, Headers: o.headers, Body: o.body}
	d := eng.Evaluate(&preq, nil)
	reserved := ""
	if d.Counter != "" {
		// The first decision named a limited rule without a count; decide
		// again on the count reserved for this request.
		n, err := store.ReserveCount(c, d.Counter)
		if err != nil {
			return d, args, fmt.Errorf("fetch %s %s: policy limit of rule %s: %w", d.Method, d.URL, d.Counter, err)
		}
		reserved = d.Counter
		d = eng.Evaluate(&preq, policy.CounterMap{reserved: n - 1})
	}
	if !d.Allow {
		return d, args, c.deny(&d, o, reserved, egress)
	}

	args = wire.FetchArgs{Method: d.Method, URL: d.URL, Body: o.body}
	if len(d.Headers) > 0 {
		args.Headers = make([]wire.Header, len(d.Headers))
		for i, h := range d.Headers {
			args.Headers[i] = wire.Header{h.Name, h.Value}
		}
	}
	// The event goes in the fetch's batch: no round trip of its own.
	_ = event.Emit(c, c.decisionEvent(&d, o, egress))
	return d, args, nil
}

// deny records a denial (and takes back the count reserved for it, if
// any, in the same batch) and returns its error. The event goes to the
// host with the run's next effect, at the latest the one recording the
// run's end.
func (c *Context) deny(d *policy.Decision, o *outReq, reserved string, egress bool) error {
	_ = event.Emit(c, c.decisionEvent(d, o, egress))
	if reserved != "" {
		_ = store.ReleaseCount(c, reserved)
	}
	return fmt.Errorf("fetch: %w", d.Err())
}

// decisionEvent is the event recording a decision: policy.allow,
// policy.deny, or policy.report for a request report mode let through
// that enforcement would have denied; egress.allow and egress.deny for
// the sandbox's own requests.
func (c *Context) decisionEvent(d *policy.Decision, o *outReq, egress bool) event.Event {
	u := d.URL
	if u == "" { // no canonical form: the URL as the agent gave it
		u = o.url
	}
	ed := event.Decision{Service: d.Service, Rule: d.Rule, Reason: string(d.Reason), Detail: d.Detail, Method: d.Method, URL: u}
	switch {
	case d.Report:
		return event.Event{Data: event.PolicyReport{Decision: ed}}
	case egress && d.Allow:
		return event.Event{Data: event.EgressAllow{Decision: ed}}
	case egress:
		return event.Event{Data: event.EgressDeny{Decision: ed}}
	case d.Allow:
		return event.Event{Data: event.PolicyAllow{Decision: ed}}
	default:
		return event.Event{Data: event.PolicyDeny{Decision: ed}}
	}
}
