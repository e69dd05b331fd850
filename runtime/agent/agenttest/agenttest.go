//go:build !wasip1

// Package agenttest runs registered agents natively, in the test's own
// process, with a Host that answers their effects the way damper's hosts
// do: fetches go to an http.Handler, with the secrets of Host.Secrets
// filled in for the origins that own them and scrubbed from the answers,
// state lives in an in-memory SQLite database per agent instance (held to
// the Durable Object's rules), sleeps pass at once, and events (the
// policy's decisions among them) and logs are recorded. The agents'
// policies decide their requests as in a module; Host.Targets points
// their services elsewhere, as DAMPER_TARGETS does.
//
// It drives the same entry points a wasm host calls (start, resume,
// cancel, with the same JSON), so what passes here runs the same in the
// module:
//
//	func TestHello(t *testing.T) {
//		h := agenttest.New()
//		defer h.Close()
//		out, err := h.Run(t.Context(), "hello", "alice", map[string]any{"name": "Alice"})
//		...
//	}
//
// The test process plays the module instance. Runs are performed one at a
// time, and a run of another Host than the last one starts on a new module
// instance, as each Host has its own storage; Restart plays the host
// replacing the instance between two runs of one Host.
package agenttest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/internal/guest"
	"github.com/damperdev/damper/runtime/internal/store"
)

// Host is an in-process host for runs of registered agents. Set its fields
// before the first Run; its methods are safe for concurrent use.
type Host struct {
	// HTTP answers the runs' fetches, buffered or streamed, whatever their
	// host. When nil, every fetch fails with fetch_error.
	HTTP http.Handler

	// Secrets are the values of the secrets the agents' policies name, as
	// the hosts read them from their environment. Like the hosts, the Host
	// substitutes a fetch's placeholders (${secret:NAME}, ${basic:USER:NAME})
	// only when the request's origin belongs to a service of the agent's
	// policy that owns NAME, fails the fetch (fetch_error) otherwise or when
	// NAME is missing here, and replaces every value, raw and encoded, with
	// [REDACTED:NAME] in what it hands back. HTTP sees the real values, so
	// a test can check the credentials a request carried. Use made-up
	// values: tests must not need real secrets.
	Secrets map[string]string

	// Targets point services of the agents' policies elsewhere, service
	// name to "scheme://host[:port]", as DAMPER_TARGETS does on the hosts:
	// an agent that uses a preset can be tested against a fake on a test
	// origin. HTTP answers every origin, so Targets matter only to what
	// the policy allows and which origin owns which secret.
	Targets map[string]string

	// OnBatch, when set, sees each batch of effects before the host
	// performs it, in the order the run issued them.
	OnBatch func(batch []Effect)

	mu         sync.Mutex
	dbs        map[string]*sql.DB // by "agent/instance"
	streams    map[uint64]*stream
	lastHandle uint64
	events     []Event
	logs       []Log
	slept      time.Duration
}

// Effect is one effect a run asked of the host: its type (fetch, sql, ...)
// and its arguments as JSON (docs/abi.md).
type Effect struct {
	Type string
	Args json.RawMessage
}

// Event is one event a run emitted.
type Event struct {
	Type string
	Run  string
	Data json.RawMessage
}

// Log is one record a run logged.
type Log struct {
	Level   string // debug, info, warn or error
	Message string
	Attrs   map[string]any
}

// Error is how a run failed, as the host answers it: invalid_payload,
// unknown_agent, agent_error, canceled, ... and the HTTP status.
type Error struct {
	Type    string
	Message string
	Status  int
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Type, e.Status, e.Message)
}

// New returns a Host with empty storage.
func New() *Host {
	return &Host{dbs: map[string]*sql.DB{}, streams: map[uint64]*stream{}}
}

// Close releases the Host's databases.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, db := range h.dbs {
		errs = append(errs, db.Close())
	}
	clear(h.dbs)
	return errors.Join(errs...)
}

// Restart plays the host replacing the module instance, as it does when an
// instance is dropped while idle or after a trap: the runtime forgets what
// it keeps in memory (which databases have a current schema). Storage
// stays. Package-level variables of the agents' own code are not reset.
// Call it between runs.
func Restart() { store.Forget() }

// Manifest returns the module's manifest: the registered agents with the
// JSON Schemas of their payloads and results.
func Manifest() json.RawMessage { return guest.Manifest(wire.Version) }

var (
	taskSeq atomic.Uint64

	// running serializes runs in the process; lastHost is the Host of the
	// last run, whose storage the module instance's caches describe.
	running  sync.Mutex
	lastHost *Host
)

// Run runs agent for instance with payload (encoded as JSON; nil sends no
// payload, json.RawMessage is sent as it is) and returns the run's result
// JSON, or an *Error. When ctx is done between two batches, the run is
// canceled.
func (h *Host) Run(ctx context.Context, agent, instance string, payload any) (json.RawMessage, error) {
	start := wire.Start{Kind: wire.KindRun, Agent: agent, Instance: instance, Targets: h.Targets}
	n := taskSeq.Add(1)
	start.Task, start.Run = fmt.Sprintf("t%d", n), fmt.Sprintf("r_%d", n)
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, fmt.Errorf("encode the payload: %w", err)
		}
		start.Payload = b
	}
	in, err := json.Marshal(start)
	if err != nil {
		return nil, fmt.Errorf("encode the start: %w", err)
	}
	defer h.release(start.Task)

	running.Lock()
	defer running.Unlock()
	if lastHost != h {
		lastHost = h
		Restart()
	}
	out, err := decodeOutput(guest.Start(in))
	for err == nil && !out.Done {
		if ctx.Err() != nil {
			out, err = decodeOutput(guest.Cancel(fmt.Appendf(nil, `{"task":%q}`, start.Task)))
			break
		}
		if h.OnBatch != nil {
			batch := make([]Effect, len(out.Effects))
			for i, e := range out.Effects {
				batch[i] = Effect{Type: e.Type, Args: e.Args}
			}
			h.OnBatch(batch)
		}
		resume := wire.Resume{Task: start.Task, Results: make([]wire.Result, len(out.Effects))}
		for i, e := range out.Effects {
			resume.Results[i] = h.perform(ctx, &start, e)
		}
		if in, err = json.Marshal(resume); err != nil {
			return nil, fmt.Errorf("encode the results: %w", err)
		}
		out, err = decodeOutput(guest.Resume(in))
	}
	if err != nil {
		return nil, err
	}
	if out.Error != nil {
		status := out.Error.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return nil, &Error{Type: out.Error.Type, Message: out.Error.Message, Status: status}
	}
	return out.Result, nil
}

func decodeOutput(b []byte) (wire.Output, error) {
	var out wire.Output
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("decode the module's output %q: %w", b, err)
	}
	return out, nil
}

// perform answers one effect. Batches are performed one effect after the
// other: a run cannot tell, since it sees results only once all are in.
func (h *Host) perform(ctx context.Context, start *wire.Start, e wire.Effect) wire.Result {
	value, err := h.answer(ctx, start, e)
	if err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			we = &wire.Error{Type: wire.ErrBadEffect, Message: err.Error()}
		}
		return wire.Result{ID: e.ID, Error: we}
	}
	b, err := json.Marshal(value)
	if err != nil {
		return wire.Result{ID: e.ID, Error: &wire.Error{Type: wire.ErrBadEffect, Message: err.Error()}}
	}
	return wire.Result{ID: e.ID, Value: b}
}

// answer performs e. An error that is not a *wire.Error is the effect's
// arguments being malformed.
func (h *Host) answer(ctx context.Context, start *wire.Start, e wire.Effect) (any, error) {
	switch e.Type {
	case wire.EffectFetch:
		var args wire.FetchArgs
		if err := json.Unmarshal(e.Args, &args); err != nil {
			return nil, err
		}
		return h.fetch(ctx, start, &args)
	case wire.EffectRead:
		var args wire.ReadArgs
		if err := json.Unmarshal(e.Args, &args); err != nil {
			return nil, err
		}
		return h.read(args)
	case wire.EffectClose:
		var args wire.CloseArgs
		if err := json.Unmarshal(e.Args, &args); err != nil {
			return nil, err
		}
		h.mu.Lock()
		delete(h.streams, args.Handle)
		h.mu.Unlock()
		return struct{}{}, nil
	case wire.EffectSQL:
		var args wire.SQLArgs
		if err := unmarshalNumbers(e.Args, &args); err != nil {
			return nil, err
		}
		return h.sql(ctx, start.Agent+"/"+start.Instance, args.Statements)
	case wire.EffectEmit:
		var args wire.EmitArgs
		if err := json.Unmarshal(e.Args, &args); err != nil {
			return nil, err
		}
		h.mu.Lock()
		for _, ev := range args.Events {
			h.events = append(h.events, Event(ev))
		}
		h.mu.Unlock()
		return struct{}{}, nil
	case wire.EffectLog:
		var args wire.LogArgs
		if err := json.Unmarshal(e.Args, &args); err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.logs = append(h.logs, Log{Level: args.Level, Message: args.Message, Attrs: args.Attrs})
		h.mu.Unlock()
		return struct{}{}, nil
	case wire.EffectSleep:
		var args wire.SleepArgs
		if err := json.Unmarshal(e.Args, &args); err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.slept += time.Duration(args.Ms) * time.Millisecond
		h.mu.Unlock()
		return struct{}{}, nil
	}
	return nil, &wire.Error{Type: wire.ErrUnknownEffect, Message: fmt.Sprintf("agenttest does not perform %q effects", e.Type)}
}

// Events returns the events the runs emitted so far, in order.
func (h *Host) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

// Logs returns the records the runs logged so far, in order.
func (h *Host) Logs() []Log {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Log(nil), h.logs...)
}

// Slept returns the time the runs slept so far. No real time passes.
func (h *Host) Slept() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.slept
}
