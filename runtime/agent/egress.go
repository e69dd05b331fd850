package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/internal/guest"
	"github.com/damperdev/damper/runtime/internal/sched"
)

// egress decides one request the agent instance's sandbox sent out
// (a wire.KindEgress task), with the agent's policy, its counters and its
// events, as Context.Fetch decides the agent's own: the host sends what
// an allow returns, with credentials substituted, and answers a denial
// with 403.
func egress(ctx context.Context, a *guest.Agent, start *wire.Start) (json.RawMessage, *wire.Error) {
	var req wire.EgressRequest
	if err := json.Unmarshal(start.Payload, &req); err != nil {
		return nil, &wire.Error{Type: wire.ErrBadTask, Message: fmt.Sprintf("egress request: %v", err)}
	}
	c := &Context{task: sched.FromContext(ctx), agent: a}
	o := &outReq{method: req.Method, url: req.URL, body: req.Body}
	if o.method == "" {
		o.method = http.MethodGet
	}
	for _, h := range req.Headers {
		o.headers = append(o.headers, policy.Header{Name: h[0], Value: h[1]})
	}
	sort.SliceStable(o.headers, func(i, j int) bool { return o.headers[i].Name < o.headers[j].Name })

	d, args, err := c.decide(o, true)
	out := wire.EgressDecision{Allow: d.Allow, Service: d.Service, Rule: d.Rule, Reason: string(d.Reason), Detail: d.Detail, Method: d.Method, URL: d.URL}
	// The decision's event was posted: hand it to the host before the task
	// ends, or it would never be sent.
	if perr := sched.Perform(c.task, wire.EffectEmit, wire.EmitArgs{Events: []wire.Event{}}, nil); perr != nil && !errors.Is(perr, context.Canceled) {
		return nil, &wire.Error{Type: errInternal, Message: perr.Error()}
	}
	var deny *policy.DenyError
	switch {
	case err == nil:
		out.Request = &args
	case errors.As(err, &deny):
		out.Allow = false
	default:
		return nil, &wire.Error{Type: errInternal, Message: err.Error()}
	}
	b, merr := json.Marshal(out)
	if merr != nil {
		return nil, &wire.Error{Type: errInternal, Message: merr.Error()}
	}
	return b, nil
}
