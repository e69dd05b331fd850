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
	"fmt"
	"reflect"

	"github.com/damperdev/damper/internal/wire"
	_ "github.com/damperdev/damper/runtime/abi" // the module's exports, in every module that registers an agent
	"github.com/damperdev/damper/runtime/internal/guest"
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
// on another name, on a name already taken and on a nil handler.
//
// A run's payload is decoded into In before anything runs or is stored,
// strictly: a member that is not a field of In (names match exactly), a
// missing field without omitempty, null for a field that is not a pointer,
// slice, map or interface, or a value of the wrong type is refused with a 400 invalid_payload error that
// names the field. No payload stands for {}. The handler's Out is the
// run's result JSON; its error is a 500 agent_error with err.Error() as
// the message, and so is a panic, with the panic's value. The manifest
// carries JSON Schemas of In and Out that say the same.
func Register[In, Out any](name string, handler func(ctx *Context, in In) (Out, error)) {
	if handler == nil {
		panic(fmt.Sprintf("agent %q: nil handler", name))
	}
	guest.Register(&guest.Agent{
		Name:   name,
		Input:  reflect.TypeFor[In](),
		Output: reflect.TypeFor[Out](),
		Run: func(ctx context.Context, start *wire.Start) (json.RawMessage, *wire.Error) {
			var in In
			if err := schema.Decode(start.Payload, &in); err != nil {
				return nil, &wire.Error{Type: wire.ErrInvalidPayload, Status: 400, Message: err.Error()}
			}
			return run(ctx, func(c *Context) (json.RawMessage, error) {
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
		},
	})
}

// run records the run, calls the handler and records how it ended.
func run(ctx context.Context, handler func(*Context) (json.RawMessage, error)) (json.RawMessage, *wire.Error) {
	if err := store.BeginRun(ctx); err != nil {
		return nil, &wire.Error{Type: errInternal, Status: 500, Message: err.Error()}
	}
	result, failure := call(&Context{task: sched.FromContext(ctx)}, handler)
	if f := sched.Failure(ctx); f != nil { // a goroutine of the run panicked
		result, failure = nil, f
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
		return nil, &wire.Error{Type: wire.ErrAgent, Status: 500, Message: err.Error()}
	}
	return result, nil
}
