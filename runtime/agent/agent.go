// Package agent is the API for writing damper agents: register a typed
// handler in a package init, and use the *Context it receives for
// everything that leaves the module (HTTP, durable state, waiting, events,
// logs).
//
// A module is a Go package main that imports the packages registering its
// agents, built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o agents.wasm .
//
// The module has no sockets, files or clock to wait on: each of those
// operations is an effect that the host (Cloudflare Workers or the local
// wazero host) performs, and while a run waits on the host the module
// instance serves other runs. A run hands its effects to the host once
// every goroutine of it waits, so its code waits only through its Context
// (each wait is an effect) or Group.Wait. A goroutine blocked on a channel,
// on a mutex held across an effect or on a Go timer still counts as
// running, and the run stalls.
//
// Handlers are tested natively with package agenttest, which answers the
// effects in-process.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	_ "github.com/damperdev/damper/runtime/abi" // the module's exports, in every module that registers an agent
	"github.com/damperdev/damper/runtime/internal/guest"
	"github.com/damperdev/damper/runtime/internal/otel"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/internal/schema"
	"github.com/damperdev/damper/runtime/internal/store"
)

// errInternal is a failure of the runtime rather than of the handler or
// its input (docs/http.md: 500 internal).
const errInternal = "internal"

// Register makes handler the agent called name. Call it from a package
// init: agents exist from the module instance's start, and the manifest
// lists them for the host.
//
// name is 1 to 128 of A-Z a-z 0-9 . _ - (not "." or ".."); Register panics
// on another name, on a name already taken, on a nil handler and on a
// policy of another format version.
//
// A run's payload is decoded into In before anything runs or is stored,
// strictly: a member that is not a field of In (names match exactly), a
// missing field without omitempty, null for a field that is not a pointer,
// slice, map or interface, or a value of the wrong type is refused with a 400 invalid_payload error that
// names the field. No payload stands for {}. The handler's Out is the
// run's result JSON; its error is a 500 agent_error with err.Error() as
// the message, and so is a panic, with the panic's value. The manifest
// carries JSON Schemas of In and Out that say the same.
//
// opts configure the agent; WithPolicy gives it the services it may reach.
// An agent without a policy may not send any request.
func Register[In, Out any](name string, handler func(ctx *Context, in In) (Out, error), opts ...Option) {
	if handler == nil {
		panic(fmt.Sprintf("agent %q: nil handler", name))
	}
	a := &guest.Agent{
		Name:   name,
		Input:  reflect.TypeFor[In](),
		Output: reflect.TypeFor[Out](),
	}
	for _, o := range opts {
		if o.apply != nil {
			o.apply(a)
		}
	}
	a.Run = func(ctx context.Context, start *wire.Start) (json.RawMessage, *wire.Error) {
		var in In
		if err := schema.Decode(start.Payload, &in); err != nil {
			return nil, &wire.Error{Type: wire.ErrInvalidPayload, Status: 400, Message: err.Error()}
		}
		return run(ctx, a, func(c *Context) (json.RawMessage, error) {
			out, err := handler(c, in)
			if err != nil {
				return nil, err
			}
			b, err := json.Marshal(out)
			if err != nil {
				return nil, fmt.Errorf("encode the result: %w", err)
			}
			return b, nil
		})
	}
	a.Egress = func(ctx context.Context, start *wire.Start) (json.RawMessage, *wire.Error) {
		return egress(ctx, a, start)
	}
	guest.Register(a)
}

// Option configures an agent at Register.
type Option struct {
	apply func(*guest.Agent)
}

// WithPolicy makes p decide every outbound request of the agent's runs
// (Context.Fetch, Context.Transport, every redirect hop): the services it
// may reach, what it may send them, how often, and the credentials the
// host adds. The manifest carries p, so the hosts know which secrets (by
// name) to load for the agent; p never holds a secret value.
//
// Build p with policy.New, which checks it. p compiles at the agent's
// first request in a module instance, not at registration (init runs at
// every start, for every agent of the module); a p that does not compile
// fails that request with the reason, and before that fails damper build,
// which compiles the manifest's policies.
//
// Register keeps p: do not change it afterwards. A host's target overrides
// (DAMPER_TARGETS) point p's services elsewhere without changing p: a
// request to a service's declared origin goes to its override.
func WithPolicy(p policy.Policy) Option {
	return Option{apply: func(a *guest.Agent) { a.Policy = &p }}
}

// run records the run, calls the handler and records how it ended. With
// telemetry asked for, the run's events become spans, sent in batches and
// the last before the run ends.
func run(ctx context.Context, a *guest.Agent, handler func(*Context) (json.RawMessage, error)) (json.RawMessage, *wire.Error) {
	if err := store.BeginRun(ctx); err != nil {
		return nil, &wire.Error{Type: errInternal, Status: 500, Message: err.Error()}
	}
	c := &Context{task: sched.FromContext(ctx), agent: a}
	tracer := otel.New(c.task.Start())
	if tracer != nil {
		tracer.Send = c.exportSpans
		sched.SetObserver(ctx, tracer.Observe)
	}
	result, failure := call(c, handler)
	if f := sched.Failure(ctx); f != nil { // a goroutine of the run panicked
		result, failure = nil, f
	}
	if tracer != nil {
		sched.SetObserver(ctx, nil)
		if batch := tracer.Finish(failure); batch != nil {
			// Posted: it goes with the batch recording the run's end, which
			// the host performs whole before the run ends.
			c.exportSpans(batch)
		}
	}
	if err := store.FinishRun(ctx, result, failure); err != nil && failure == nil {
		return nil, &wire.Error{Type: errInternal, Status: 500, Message: err.Error()}
	}
	return result, failure
}

// call runs the handler, recovering a panic so that the run's end is still
// recorded.
func call(c *Context, handler func(*Context) (json.RawMessage, error)) (result json.RawMessage, failure *wire.Error) {
	defer func() {
		if r := recover(); r != nil {
			result, failure = nil, sched.Panicked(r)
		}
	}()
	result, err := handler(c)
	if err != nil {
		return nil, wireError(err)
	}
	return result, nil
}

// Error is a handler's failure as the caller gets it: an error type, an
// HTTP status and details of its own, where any other error is a 500
// agent_error with its text as the message. Return one, or an error that
// wraps one or converts to one (errors.As finds it), for a failure a
// caller branches on: the harness's *harness.ResultError is a 500
// result_error whose details hold the reason, the raw output and the
// problems.
//
// The body is {"error": {"type": Type, "message": Message, "details":
// Details}}, with Details encoded as JSON (left out when nil).
type Error struct {
	Type    string
	Status  int // 400 to 599; anything else is 500
	Message string
	Details any
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// wireError is the error a handler's err is answered with.
func wireError(err error) *wire.Error {
	var ae *Error
	if !errors.As(err, &ae) || ae == nil || ae.Type == "" {
		return &wire.Error{Type: wire.ErrAgent, Status: 500, Message: err.Error()}
	}
	we := &wire.Error{Type: ae.Type, Status: ae.Status, Message: ae.Message}
	if we.Status < 400 || we.Status > 599 {
		we.Status = 500
	}
	if ae.Details != nil {
		b, derr := json.Marshal(ae.Details)
		if derr != nil {
			we.Message += " (its details did not encode: " + derr.Error() + ")"
		} else {
			we.Details = b
		}
	}
	return we
}
