//go:build !wasip1

// Package agenttest runs registered agents natively, in the test's own
// process, with a Host that answers their effects with the same host core
// as damper's Go host (internal/host): fetches go to an http.Handler, with
// the secrets of Host.Secrets filled in for the origins that own them and
// scrubbed from the answers, state lives in an in-memory SQLite database
// per agent instance held to the Durable Object's rules, sleeps pass at
// once, and events (the policy's decisions among them) and logs are
// recorded. The agents' policies decide their requests as in a module;
// Host.Targets points their services elsewhere, as DAMPER_TARGETS does.
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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/damperdev/damper/internal/host"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
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

	// Model is the host's default model, as DAMPER_MODEL sets it on the
	// hosts ("test/schema", say), and Sandbox the sandbox kind every run
	// uses instead of its agent's choice, as DAMPER_SANDBOX does.
	Model, Sandbox string

	// OnBatch, when set, sees each batch of effects before the host
	// performs it, in the order the run issued them.
	OnBatch func(batch []Effect)

	// RunID, when set, is the id of the next runs instead of a fresh one:
	// a test plays a host starting a lost run again with its id, which
	// the harness continues from what the run stored.
	RunID string

	mu        sync.Mutex
	instances map[string]*host.Instance // by "agent/instance"
	events    []Event
	logs      []Log
	slept     time.Duration
}

// Effect is one effect a run asked of the host: its type (fetch, sql, ...)
// and its arguments as JSON (docs/abi.md).
type Effect struct {
	Type string
	Args json.RawMessage
}

// Event is one event of a run, as the agent instance's event log holds
// it (package event): what the run emitted, the policy's decisions and
// the records it logged, numbered by the host.
type Event = event.Envelope

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
	// Details is the error body's details, when the run's error had any
	// (an agent.Error's Details: a result_error's reason and problems).
	Details json.RawMessage
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Type, e.Status, e.Message)
}

// New returns a Host with empty storage.
func New() *Host {
	return &Host{instances: map[string]*host.Instance{}}
}

// Close releases the Host's databases.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, i := range h.instances {
		errs = append(errs, i.Close())
	}
	clear(h.instances)
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
	var handlers sync.WaitGroup
	defer handlers.Wait() // after the task released its bodies, so no handler blocks on a write
	core, err := h.hostCore(&handlers)
	if err != nil {
		return nil, &Error{Type: "internal", Status: http.StatusInternalServerError, Message: err.Error()}
	}
	var raw []byte
	if payload != nil {
		if raw, err = json.Marshal(payload); err != nil {
			return nil, fmt.Errorf("encode the payload: %w", err)
		}
	}
	n := taskSeq.Add(1)
	run := h.RunID
	if run == "" {
		run = fmt.Sprintf("r_%d", n)
	}
	t := core.NewTask(fmt.Sprintf("t%d", n), run, h.instance(core, agent, instance), nil)
	t.Attempt = 1

	running.Lock()
	defer running.Unlock()
	if lastHost != h {
		lastHost = h
		Restart()
	}
	out, err := core.RunTask(ctx, inProcess{}, t, raw)
	// Events are committed behind the run; Events has them all.
	_ = t.Inst.Flush(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	if out.Error != nil {
		status := out.Error.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return nil, &Error{Type: out.Error.Type, Message: out.Error.Message, Status: status, Details: out.Error.Details}
	}
	return out.Result, nil
}

// hostCore builds the host core for a run, from the fields as they are
// then: a test may change them between runs.
func (h *Host) hostCore(handlers *sync.WaitGroup) (*host.Core, error) {
	var m wire.Manifest
	if err := json.Unmarshal(Manifest(), &m); err != nil {
		return nil, fmt.Errorf("agenttest: decode the manifest: %w", err)
	}
	opts := host.Options{
		Transport: handlerTransport{h.HTTP, handlers},
		Secrets: func(name string) (string, bool) {
			v, ok := h.Secrets[name]
			return v, ok
		},
		Targets: h.Targets,
		Model:   h.Model,
		Sandbox: h.Sandbox,
		Logger:  slog.New(&recordLogs{h: h}),
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.slept += d
			h.mu.Unlock()
			return ctx.Err()
		},
	}
	if onBatch := h.OnBatch; onBatch != nil {
		opts.OnBatch = func(_ *host.Task, effects []wire.Effect) {
			batch := make([]Effect, len(effects))
			for i, e := range effects {
				batch[i] = Effect{Type: e.Type, Args: e.Args}
			}
			onBatch(batch)
		}
	}
	return host.New(m, opts)
}

// instance returns the host state of (agent, id), with its database in
// memory for as long as the Host.
func (h *Host) instance(core *host.Core, agent, id string) *host.Instance {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := agent + "/" + id
	i, ok := h.instances[key]
	if !ok {
		i = core.NewInstance(agent, id, "")
		i.SetOnAppend(func(envs []event.Envelope) {
			h.mu.Lock()
			h.events = append(h.events, envs...)
			h.mu.Unlock()
		})
		h.instances[key] = i
	}
	return i
}

// inProcess is the module instance the test process plays.
type inProcess struct{}

func (inProcess) Start(_ context.Context, s wire.Start) (wire.Output, error) {
	in, err := json.Marshal(s)
	if err != nil {
		return wire.Output{}, fmt.Errorf("encode the start: %w", err)
	}
	return decodeOutput(guest.Start(in))
}

func (inProcess) Resume(_ context.Context, r *wire.Resume) (wire.Output, error) {
	in, err := json.Marshal(r)
	if err != nil {
		return wire.Output{}, fmt.Errorf("encode the results: %w", err)
	}
	return decodeOutput(guest.Resume(in))
}

func (inProcess) Cancel(_ context.Context, task string) (wire.Output, error) {
	return decodeOutput(guest.Cancel(fmt.Appendf(nil, `{"task":%q}`, task)))
}

func decodeOutput(b []byte) (wire.Output, error) {
	var out wire.Output
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("decode the module's output %q: %w", b, err)
	}
	return out, nil
}

// recordLogs is the slog handler the host core logs a run's records to.
type recordLogs struct {
	h     *Host
	attrs []slog.Attr
}

func (r *recordLogs) Enabled(context.Context, slog.Level) bool { return true }

func (r *recordLogs) Handle(_ context.Context, rec slog.Record) error {
	// A log effect's record carries the run's id; the host's own records
	// (target overrides) are not the runs' logs.
	var l Log
	isRun := false
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "run" {
			isRun = true
			return true
		}
		if l.Attrs == nil {
			l.Attrs = map[string]any{}
		}
		l.Attrs[a.Key] = a.Value.Any()
		return true
	})
	if !isRun {
		return nil
	}
	l.Level, l.Message = strings.ToLower(rec.Level.String()), rec.Message
	r.h.mu.Lock()
	r.h.logs = append(r.h.logs, l)
	r.h.mu.Unlock()
	return nil
}

func (r *recordLogs) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordLogs{h: r.h, attrs: append(append([]slog.Attr(nil), r.attrs...), as...)}
}

func (r *recordLogs) WithGroup(string) slog.Handler { return r }

// Events returns the events of the runs so far, in order: what they
// emitted, their policy decisions and their log records, each numbered in
// its agent instance's log.
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
