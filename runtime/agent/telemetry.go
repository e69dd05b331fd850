package agent

import (
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/runtime/internal/sched"
)

// exportSpans sends a batch of the run's spans (OTLP/JSON) to the
// collector the host named, as a request of the run like any other: the
// agent's policy decides it (the service "otel", policy.OTLP), and the
// decision is an event. It does not wait: the fetch is posted, and goes
// with the run's next batch; its answer is not needed. A denied export
// is dropped (the host warned at its start that the policy lacks the
// service).
func (c *Context) exportSpans(body []byte) {
	tel := c.task.Start().Telemetry
	if tel == nil {
		return
	}
	o := &outReq{method: "POST", url: tel.Endpoint, headers: []policy.Header{{Name: "Content-Type", Value: "application/json"}}, body: body}
	eng, err := c.policyEngine()
	if err != nil || eng == nil {
		return
	}
	d := eng.Evaluate(&policy.Request{Method: o.method, URL: o.url, Headers: o.headers, Body: o.body}, nil)
	if d.Counter != "" {
		// A limited rule counts in storage, which waits: the ordinary path.
		_, _, _ = c.send(o, false)
		return
	}
	_ = event.Emit(c, c.decisionEvent(&d, o, false))
	if !d.Allow {
		return
	}
	args := wire.FetchArgs{Method: d.Method, URL: d.URL, Body: body}
	for _, h := range d.Headers {
		args.Headers = append(args.Headers, wire.Header{h.Name, h.Value})
	}
	_ = sched.Post(c.task, wire.EffectFetch, args)
}
