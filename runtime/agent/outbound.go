package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/internal/store"
)

// Event types of policy decisions. Their data is a JSON object with the
// service, rule, reason (policy.Reason), detail, method and URL of the
// decision, and "report": true for a request report mode let through that
// enforcement would have denied. It never holds a secret: the module has
// none.
const (
	EventPolicyAllow = "policy.allow"
	EventPolicyDeny  = "policy.deny"
)

// outReq is one outbound request as the policy sees it: what the agent
// asked for, or a redirect hop made from it.
type outReq struct {
	req     *http.Request // for the response's Request field
	method  string
	url     string
	headers []policy.Header // sorted by name, values in order
	body    []byte
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
// Every decision is recorded with an event (EventPolicyAllow,
// EventPolicyDeny). An allow's event goes to the host in the same batch as
// the fetch, so recording costs no round trip; the event is best effort:
// its failure fails nothing.
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
	d, args, err := c.decide(o, "")
	if err != nil {
		return v, d, err
	}
	args.Stream = stream
	if err := sched.Perform(c.task, wire.EffectFetch, args, &v); err != nil {
		return v, d, fmt.Errorf("fetch %s %s: %w", args.Method, args.URL, err)
	}
	return v, d, nil
}

// decide decides o with the agent's policy, counts it when its rule has a
// limit, and posts the decision's event (source, when set, is added to its
// data: "egress" for a sandbox's request). On an allow it returns the fetch
// to send, whose event joins the next batch; a denial is an error wrapping
// the *policy.DenyError, its event performed.
func (c *Context) decide(o *outReq, source string) (policy.Decision, wire.FetchArgs, error) {
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
		return d, args, c.deny(&d, o, "", source)
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
		return d, args, c.deny(&d, o, reserved, source)
	}

	args = wire.FetchArgs{Method: d.Method, URL: d.URL, Body: o.body}
	if len(d.Headers) > 0 {
		args.Headers = make([]wire.Header, len(d.Headers))
		for i, h := range d.Headers {
			args.Headers[i] = wire.Header{h.Name, h.Value}
		}
	}
	// The event goes in the fetch's batch: no round trip of its own.
	_ = sched.Post(c.task, wire.EffectEmit, c.decisionEvent(EventPolicyAllow, &d, o, source))
	return d, args, nil
}

// deny records a denial (and takes back the count reserved for it, if
// any, in the same batch) and returns its error.
func (c *Context) deny(d *policy.Decision, o *outReq, reserved, source string) error {
	if reserved == "" {
		_ = sched.Perform(c.task, wire.EffectEmit, c.decisionEvent(EventPolicyDeny, d, o, source), nil)
	} else {
		_ = sched.Post(c.task, wire.EffectEmit, c.decisionEvent(EventPolicyDeny, d, o, source))
		_ = store.ReleaseCount(c, reserved)
	}
	return fmt.Errorf("fetch: %w", d.Err())
}

// decisionEvent returns the args of the emit effect recording a decision.
// They are written by hand: encoding/json costs several microseconds a
// call in wasm, on every request.
func (c *Context) decisionEvent(typ string, d *policy.Decision, o *outReq, source string) wirejson.Encoded {
	u := d.URL
	if u == "" { // no canonical form: the URL as the agent gave it
		u = o.url
	}
	run := c.Run()
	b := make([]byte, 0, 160+len(run)+len(d.Service)+len(d.Rule)+len(d.Detail)+len(u))
	b = append(b, `{"events":[{"type":`...)
	b = wirejson.AppendString(b, typ)
	b = append(b, `,"run":`...)
	b = wirejson.AppendString(b, run)
	b = append(b, `,"data":{"service":`...)
	b = wirejson.AppendString(b, d.Service)
	b = append(b, `,"rule":`...)
	b = wirejson.AppendString(b, d.Rule)
	b = append(b, `,"reason":`...)
	b = wirejson.AppendString(b, string(d.Reason))
	if d.Detail != "" {
		b = append(b, `,"detail":`...)
		b = wirejson.AppendString(b, d.Detail)
	}
	b = append(b, `,"method":`...)
	b = wirejson.AppendString(b, d.Method)
	b = append(b, `,"url":`...)
	b = wirejson.AppendString(b, u)
	if d.Report {
		b = append(b, `,"report":true`...)
	}
	if source != "" {
		b = append(b, `,"source":`...)
		b = wirejson.AppendString(b, source)
	}
	return append(b, `}}]}`...)
}
