// Package local runs a damper module under wazero: the local host behind
// `damper run` and `damper serve`. It speaks the module ABI of docs/abi.md
// and serves the HTTP API of docs/http.md, like the Workers host.
//
// A Host compiles the module once and keeps one module instance per live
// agent instance, dropped when idle, when it traps, when it grew past a
// size, or when the host needs room for another; runs of one agent instance
// are serialized in arrival order, different agent instances run
// concurrently. State lives in one SQLite file per agent instance, with the
// instance's event log and run ledger (docs/events.md): a run is recorded
// before it starts, and one whose process was lost starts again with the
// same id at the next Resume.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/damperdev/damper/internal/host"
	"github.com/damperdev/damper/internal/sandboxhost"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

// Error types the host answers with, besides the guest's own (docs/http.md).
const (
	errInvalidName    = "invalid_name"
	errInvalidJSON    = "invalid_json"
	errInvalidRequest = "invalid_request"
	errUnauthorized   = "unauthorized"
	errNotFound       = "not_found"
	errMethod         = "method_not_allowed"
	errTooLarge       = "payload_too_large"
	errConflict       = "conflict"
	errBusy           = "busy"
	errModuleTrap     = "module_trap"
	errInterrupted    = "interrupted"
	errInternal       = "internal"
	errSandbox        = "sandbox_error"
)

// Run statuses (Run.Status).
const (
	StatusQueued   = host.RunQueued
	StatusRunning  = host.RunRunning
	StatusDone     = host.RunDone
	StatusFailed   = host.RunFailed
	StatusCanceled = host.RunCanceled
)

// Run modes (Run.Mode, and the Mode option): how a run was asked for.
const (
	ModeSync       = host.ModeSync       // its caller waits for the result
	ModeStream     = host.ModeStream     // its caller follows its events (SSE)
	ModeBackground = host.ModeBackground // accepted at once; fetched later
	ModeCLI        = host.ModeCLI        // damper run: not resumed by another process
)

// MaxAttempts is how many times a run is started at most: a run whose
// module instance trapped, or whose process was lost, starts again with
// the same id until then, and then fails.
const MaxAttempts = host.MaxAttempts

// Run is one run as the agent instance's ledger records it, and as GET
// /agents/{agent}/{id}/runs/{run} answers it (its JSON).
type Run = host.Run

// Host runs one damper module. It is safe for concurrent use.
type Host struct {
	cfg       Config
	eng       *engine
	manifest  wire.Manifest
	agents    map[string]bool
	core      *host.Core
	sandboxes *sandboxhost.Host // the local and container kinds (local/sandbox.go)

	ctx    context.Context // ends at Close: interrupts every run, which resumes at the next start
	cancel context.CancelCauseFunc

	mu        sync.Mutex
	closed    bool
	instances map[instanceKey]*agentInstance
	runs      map[string]*runRequest // queued and running, by run id
	workers   sync.WaitGroup
}

type instanceKey struct{ agent, id string }

// RunResult is the answer of a run: its id and the handler's result.
type RunResult struct {
	Run    string          `json:"run"`
	Result json.RawMessage `json:"result"`
}

// RunOption configures one run.
type RunOption func(*runOptions)

type runOptions struct {
	onEvent        func(Event)
	onEnd          func(Run)
	mode           string
	model, sandbox string
}

// OnEvent calls fn with every event of the run, in order, as it is
// appended to the agent instance's event log. fn must not block for long:
// the run's effects wait for it.
func OnEvent(fn func(Event)) RunOption {
	return func(o *runOptions) { o.onEvent = fn }
}

// OnEnd calls fn once the run has ended in this host, with the run as it
// ended (see Wait), or was interrupted by Close.
func OnEnd(fn func(Run)) RunOption {
	return func(o *runOptions) { o.onEnd = fn }
}

// Mode says how the run is asked for (ModeSync by default for Run,
// ModeBackground for Start): it is recorded in the ledger, and decides
// what survives: a ModeSync or ModeCLI run is recorded once it starts
// (bad input leaves nothing behind), the others when accepted; a ModeCLI
// run is not resumed by another process.
func Mode(mode string) RunOption {
	return func(o *runOptions) { o.mode = mode }
}

// Model sets the run's model choice, passed to the guest in its start
// (wire.Start.Model), over the Config's.
func Model(model string) RunOption {
	return func(o *runOptions) { o.model = model }
}

// Sandbox sets the run's sandbox kind, passed to the guest in its start
// (wire.Start.Sandbox), over the Config's.
func Sandbox(kind string) RunOption {
	return func(o *runOptions) { o.sandbox = kind }
}

// New compiles the module wasm (from the compilation cache when it can),
// reads its manifest from a fresh instance and returns a Host for it.
// It fails with ErrNotDamperModule or *ABIError for a module it cannot run,
// and on an agent's policy that does not compile or a target override that
// is not an origin.
func New(ctx context.Context, wasm []byte, cfg Config) (*Host, error) {
	cfg = cfg.withDefaults()
	eng, err := newEngine(ctx, wasm, cfg)
	if err != nil {
		return nil, err
	}
	m, err := eng.manifest(ctx)
	if err != nil {
		eng.close(ctx)
		return nil, err
	}
	targets, telemetry, err := cfg.telemetryTargets(m)
	if err != nil {
		eng.close(ctx)
		return nil, err
	}
	opts := host.Options{
		Transport:      cfg.transport,
		Secrets:        cfg.secrets,
		Targets:        targets,
		Logger:         cfg.logger,
		Model:          cfg.model,
		Sandbox:        cfg.sandbox,
		EventRetention: cfg.retention,
		Telemetry:      telemetry,
		DiscardEvents:  cfg.discardEvents,
	}
	if cfg.onBatch != nil {
		opts.OnBatch = func(t *host.Task, effects []wire.Effect) { cfg.onBatch(t.Inst.Agent, t.Inst.ID, effects) }
	}
	h := &Host{
		cfg:       cfg,
		eng:       eng,
		manifest:  m,
		agents:    map[string]bool{},
		instances: map[instanceKey]*agentInstance{},
		runs:      map[string]*runRequest{},
	}
	if h.sandboxes, err = newSandboxes(cfg, h.egress); err != nil {
		eng.close(ctx)
		return nil, err
	}
	opts.Perform = h.sandboxes.Performers()
	core, err := host.New(m, opts)
	if err != nil {
		h.sandboxes.Close()
		eng.close(ctx)
		return nil, err
	}
	h.core = core
	for _, a := range m.Agents {
		h.agents[a.Name] = true
	}
	h.ctx, h.cancel = context.WithCancelCause(context.Background())
	return h, nil
}

// ReadManifest compiles wasm and returns its manifest, checked like New
// does: the ABI version, and every agent's policy, which must compile.
// `damper build` writes it beside the module.
func ReadManifest(ctx context.Context, wasm []byte, cfg Config) (Manifest, error) {
	cfg = cfg.withDefaults()
	eng, err := newEngine(ctx, wasm, cfg)
	if err != nil {
		return Manifest{}, err
	}
	defer eng.close(ctx)
	m, err := eng.manifest(ctx)
	if err != nil {
		return manifestOf(m), err
	}
	// The module compiles a policy only at its agent's first request; a
	// mistake in one is found here, at build time, instead.
	return manifestOf(m), host.CheckManifest(m)
}

// Manifest returns the module's manifest.
func (h *Host) Manifest() Manifest { return manifestOf(h.manifest) }

// Run runs agent for the agent instance id with payload (JSON; empty means
// null) and waits for its result. Runs of one agent instance run one at a
// time in arrival order. When ctx ends first, the run is canceled (its
// caller is gone).
//
// Every failure is an *Error whose Status is the HTTP status to answer
// with (docs/http.md): the guest's own errors (invalid_payload,
// agent_error, …) and the host's (invalid_name, invalid_json, not_found,
// busy, module_trap, canceled, internal).
func (h *Host) Run(ctx context.Context, agent, id string, payload json.RawMessage, opts ...RunOption) (RunResult, error) {
	o := runOptions{mode: ModeSync}
	for _, opt := range opts {
		opt(&o)
	}
	req, err := h.submit(ctx, agent, id, payload, o)
	if err != nil {
		return RunResult{}, err
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		// The worker sees it too: a run that has not started never does,
		// a running one is canceled in the guest.
		req.cancel(&cancelCause{reason: event.CancelCallerGone, message: "the caller is gone"})
		return RunResult{}, errorOf(host.CanceledError(ctx))
	}
	if req.answer != nil {
		return RunResult{}, req.answer
	}
	return RunResult{Run: req.final.ID, Result: req.final.Result}, nil
}

// Start accepts a run of agent for the agent instance id and returns at
// once, with the run as recorded (queued); it runs in the background, and
// survives the loss of the process (Resume starts it again). Wait, Cancel
// and the ledger (GetRun, Runs) follow it.
func (h *Host) Start(ctx context.Context, agent, id string, payload json.RawMessage, opts ...RunOption) (Run, error) {
	o := runOptions{mode: ModeBackground}
	for _, opt := range opts {
		opt(&o)
	}
	req, err := h.submit(ctx, agent, id, payload, o)
	if err != nil {
		return Run{}, err
	}
	return req.rec, nil
}

// Wait waits until run of the agent instance (agent, id) has ended, or
// ctx, and returns it as it ended: its Status, and its Result or Error
// (also for a run of ModeSync or ModeCLI that ended before the ledger had
// it, such as one whose payload did not decode). A run the host shut down
// before it ended has the status it had, and an interrupted Error.
func (h *Host) Wait(ctx context.Context, agent, id, run string) (Run, error) {
	h.mu.Lock()
	req := h.runs[run]
	h.mu.Unlock()
	if req != nil && req.key == (instanceKey{agent, id}) {
		select {
		case <-req.done:
			return req.final, nil
		case <-ctx.Done():
			return Run{}, ctx.Err()
		}
	}
	r, found, err := h.GetRun(ctx, agent, id, run)
	if err == nil && !found {
		err = newError(404, errNotFound, fmt.Sprintf("agent instance %s/%s has no run %s", agent, id, run))
	}
	return r, err
}

// Cancel cancels run of the agent instance (agent, id), queued or
// running, and returns it once it has ended (canceled, or finished if it
// ended first). reason is one of event's Cancel constants
// (event.CancelRequested for an API's DELETE). A run that has already
// ended is a 409 conflict *Error, an unknown one a 404.
func (h *Host) Cancel(ctx context.Context, agent, id, run, reason string) (Run, error) {
	if err := h.checkNames(agent, id); err != nil {
		return Run{}, err
	}
	h.mu.Lock()
	req := h.runs[run]
	h.mu.Unlock()
	if req == nil || req.key != (instanceKey{agent, id}) {
		r, found, err := h.GetRun(ctx, agent, id, run)
		switch {
		case err != nil:
			return Run{}, err
		case !found:
			return Run{}, newError(404, errNotFound, fmt.Sprintf("agent instance %s/%s has no run %s", agent, id, run))
		case host.Finished(r.Status):
			return r, newError(409, errConflict, fmt.Sprintf("run %s has already ended (%s)", run, r.Status))
		}
		// Recorded but not in this process: interrupted, waiting to be
		// resumed. Canceling it ends it here.
		return h.finishOrphan(ctx, instanceKey{agent, id}, r, reason)
	}
	req.cancel(&cancelCause{reason: reason, message: cancelMessage(reason)})
	h.mu.Lock()
	queued := !req.taken
	req.taken = true // its worker passes it by
	ai := h.instances[req.key]
	h.mu.Unlock()
	if queued && ai != nil {
		// Still waiting behind another run: it ends now, not when its
		// turn comes.
		h.execute(ai, req)
		return req.final, nil
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return Run{}, ctx.Err()
	}
	return req.final, nil
}

func cancelMessage(reason string) string {
	switch reason {
	case event.CancelRequested:
		return "the run was canceled (DELETE of the run)"
	case event.CancelInstanceDeleted:
		return "the run was canceled: its agent instance was deleted"
	case event.CancelInterrupted:
		return "the run was interrupted (SIGINT) and canceled"
	case event.CancelCallerGone:
		return "the run was canceled: its caller is gone"
	}
	return "the run was canceled (" + reason + ")"
}

// GetRun returns run of the agent instance (agent, id) from its ledger,
// and whether it is there.
func (h *Host) GetRun(ctx context.Context, agent, id, run string) (Run, bool, error) {
	if err := h.checkNames(agent, id); err != nil {
		return Run{}, false, err
	}
	ai, release, err := h.acquire(instanceKey{agent, id})
	if err != nil {
		return Run{}, false, err
	}
	defer release()
	return ai.inst.GetRun(ctx, run)
}

// Runs returns up to limit runs of the agent instance (agent, id), the
// newest first.
func (h *Host) Runs(ctx context.Context, agent, id string, limit int) ([]Run, error) {
	if err := h.checkNames(agent, id); err != nil {
		return nil, err
	}
	ai, release, err := h.acquire(instanceKey{agent, id})
	if err != nil {
		return nil, err
	}
	defer release()
	return ai.inst.Runs(ctx, limit)
}

// Delete cancels every run of the agent instance (agent, id), queued or
// running, and destroys its state: its database (the agent's state, the
// event log, the run ledger) and its sandbox. It returns the ids of the
// runs it canceled. The next run of (agent, id) starts empty.
func (h *Host) Delete(ctx context.Context, agent, id string) ([]string, error) {
	if err := h.checkNames(agent, id); err != nil {
		return nil, err
	}
	key := instanceKey{agent, id}
	ai, release, err := h.acquire(key)
	if err != nil {
		return nil, err
	}
	defer release()
	h.mu.Lock()
	var canceled []*runRequest
	for _, req := range h.runs {
		if req.key == key {
			canceled = append(canceled, req)
		}
	}
	h.mu.Unlock()
	ids := make([]string, 0, len(canceled))
	for _, req := range canceled {
		req.cancel(&cancelCause{reason: event.CancelInstanceDeleted, message: cancelMessage(event.CancelInstanceDeleted)})
		ids = append(ids, req.rec.ID)
	}
	// Runs recorded but not in this process (interrupted) go with the
	// database; say so.
	if unfinished, err := ai.inst.Unfinished(ctx); err == nil {
		for _, r := range unfinished {
			if !containsRun(canceled, r.ID) {
				ids = append(ids, r.ID)
			}
		}
	}
	// The worker destroys the state once the runs before it ended: it
	// owns the module instance, which must forget the database.
	j := &job{destroy: make(chan error, 1)}
	if err := h.enqueueJob(ai, j); err != nil {
		return nil, err
	}
	select {
	case err := <-j.destroy:
		var sb *sandboxError
		switch {
		case errors.As(err, &sb):
			return nil, newError(502, errSandbox, fmt.Sprintf("agent instance %s/%s was not deleted (its runs were canceled): its sandbox could not be destroyed: %v", agent, id, sb.err))
		case err != nil:
			return nil, newError(500, errInternal, fmt.Sprintf("delete %s/%s: %v", agent, id, err))
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return ids, nil
}

// sandboxError is a sandbox that could not be destroyed: DELETE answers
// 502 sandbox_error, and the instance's state stays.
type sandboxError struct{ err error }

func (e *sandboxError) Error() string { return "destroy the sandbox: " + e.err.Error() }

func containsRun(reqs []*runRequest, id string) bool {
	for _, r := range reqs {
		if r.rec.ID == id {
			return true
		}
	}
	return false
}

// unknownAgent is the 404 for a run of an agent the module does not have.
func (h *Host) unknownAgent(name string) *Error {
	names := make([]string, len(h.manifest.Agents))
	for i, a := range h.manifest.Agents {
		names[i] = a.Name
	}
	return newError(404, errNotFound, wire.UnknownAgentMessage(name, names))
}

// checkNames is the checks of every route on (agent, id): the grammar,
// then the agent.
func (h *Host) checkNames(agent, id string) *Error {
	if !ValidName(agent) || !ValidName(id) {
		return newError(400, errInvalidName, "agent and id are 1 to 128 of A-Z a-z 0-9 . _ -, and neither . nor ..")
	}
	if !h.agents[agent] {
		return h.unknownAgent(agent)
	}
	return nil
}

// Close interrupts every run, drops every module instance and closes every
// database. A run it interrupts stays unfinished in its ledger, and
// Resume starts it again (with the same id) in the next Host on the same
// data directory. It waits for the runs to stop, or for ctx.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	for _, ai := range h.instances {
		close(ai.queue)
	}
	h.mu.Unlock()
	h.cancel(errShutdown)

	done := make(chan struct{})
	go func() { h.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close host: %w", ctx.Err())
	}
	h.sandboxes.Close()
	return h.eng.close(ctx)
}

// ValidName reports whether s is a valid agent name or instance id: 1 to
// 128 of A-Z a-z 0-9 . _ -, and neither "." nor "..". Such a name is a safe
// single path element.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newRunID() string {
	var b [12]byte
	rand.Read(b[:])
	return "r_" + hex.EncodeToString(b[:])
}

// cancelCause is why a run's context ended, when someone canceled it.
type cancelCause struct{ reason, message string }

func (c *cancelCause) Error() string { return c.message }

// errShutdown ends the runs of a closing host; they are not finished in
// the ledger, so the next host resumes them.
var errShutdown = errors.New("the host is shutting down")

// errRunTimeout is the cause of a run's context when its run timeout passed.
var errRunTimeout = errors.New("the run timeout passed")

// runRequest is one run this process has taken: queued, then running.
type runRequest struct {
	key     instanceKey
	rec     Run // as recorded (ID, Mode, Payload, Model, Sandbox, and a resumed run's row)
	ctx     context.Context
	cancel  context.CancelCauseFunc
	onEvent func(Event)
	onEnd   func(Run)
	done    chan struct{} // closed when the run has ended here, or was interrupted

	// Set before done closes.
	final  Run    // the ledger's row at the end
	answer *Error // for the caller of Run: how it failed, when it did not end done

	taken bool // under Host.mu: its worker (or Cancel, for a queued run) has it
}

// job is what an agent instance's worker takes from its queue: a run, or
// the destruction of the instance's state.
type job struct {
	run     *runRequest
	destroy chan error
}

// agentInstance is the host's state for one (agent, id): its queue of runs,
// its module instance while live, its database, and the feed its event
// streams follow.
type agentInstance struct {
	key    instanceKey
	queue  chan *job     // jobs waiting; the running one has left it
	evict  chan struct{} // asks an idle worker to retire, to make room
	logger *slog.Logger
	mi     *moduleInstance // nil until the first run, and after a trap
	inst   *host.Instance
	feed   *feed
	egress egressGate // the running run's module instance, for its sandbox's egress tasks

	// Under Host.mu: whether it has a module instance, is running a run,
	// when its last run ended (for choosing whom to evict), how many jobs
	// wait, and how many readers (streams, ledger reads) hold it.
	live     bool
	running  bool
	lastUsed time.Time
	waiting  int
	refs     int
}

// submit checks a run, records it when its mode is recorded at once, and
// queues it.
func (h *Host) submit(ctx context.Context, agent, id string, payload json.RawMessage, o runOptions) (*runRequest, error) {
	if err := h.checkNames(agent, id); err != nil {
		return nil, err
	}
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	} else if !json.Valid(payload) {
		return nil, newError(400, errInvalidJSON, "the payload is not one JSON value")
	}
	if o.model == "" {
		o.model = h.cfg.model
	}
	if o.sandbox == "" {
		o.sandbox = h.cfg.sandbox
	}
	key := instanceKey{agent, id}
	ai, release, err := h.acquire(key)
	if err != nil {
		return nil, err
	}
	defer release()
	runCtx, cancel := context.WithCancelCause(h.ctx)
	req := &runRequest{
		key:     key,
		rec:     Run{ID: newRunID(), Agent: agent, Instance: id, Mode: o.mode, Payload: payload, Model: o.model, Sandbox: o.sandbox, Status: StatusQueued},
		ctx:     runCtx,
		cancel:  cancel,
		onEvent: o.onEvent,
		onEnd:   o.onEnd,
		done:    make(chan struct{}),
	}
	if !h.reserve(ai) {
		cancel(nil)
		return nil, newError(429, errBusy, fmt.Sprintf("agent instance %s/%s already has %d runs waiting", agent, id, h.cfg.maxQueue))
	}
	if o.mode != ModeSync && o.mode != ModeCLI {
		// Accepted runs are recorded at once: the caller is told the run
		// exists, and it must survive the process.
		if err := ai.inst.RecordRun(ctx, &req.rec); err != nil {
			h.unreserve(ai)
			cancel(nil)
			return nil, newError(500, errInternal, err.Error())
		}
	}
	if err := h.enqueueRun(ai, req); err != nil {
		cancel(nil)
		return nil, err
	}
	return req, nil
}

// acquire returns the agent instance of key, created (with its worker)
// if need be, held until release: it does not retire while held.
func (h *Host) acquire(key instanceKey) (*agentInstance, func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, newError(503, errInterrupted, "the host is shutting down")
	}
	ai, ok := h.instances[key]
	if !ok {
		ai = &agentInstance{
			key:    key,
			queue:  make(chan *job, h.cfg.maxQueue+8),
			evict:  make(chan struct{}, 1),
			logger: h.cfg.logger.With("agent", key.agent, "id", key.id),
			inst:   h.core.NewInstance(key.agent, key.id, dbPath(h.cfg.dataDir, key.agent, key.id)),
		}
		h.newFeed(ai)
		h.instances[key] = ai
		h.workers.Add(1)
		go h.work(ai)
	}
	ai.refs++
	var once sync.Once
	return ai, func() {
		once.Do(func() {
			h.mu.Lock()
			ai.refs--
			h.mu.Unlock()
		})
	}, nil
}

// newFeed gives ai a new feed, wired to its event log.
func (h *Host) newFeed(ai *agentInstance) {
	f := newFeed(h.cfg.ringSize)
	ai.feed = f
	ai.inst.SetOnAppend(f.publish)
}

// reserve takes a place in ai's queue, if one is free.
func (h *Host) reserve(ai *agentInstance) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ai.waiting >= h.cfg.maxQueue {
		return false
	}
	ai.waiting++
	return true
}

func (h *Host) unreserve(ai *agentInstance) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ai.waiting--
}

// enqueueRun queues a run that has its place (reserve).
func (h *Host) enqueueRun(ai *agentInstance, req *runRequest) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		ai.waiting--
		return newError(503, errInterrupted, "the host is shutting down")
	}
	h.runs[req.rec.ID] = req
	if req.onEvent != nil {
		ai.feed.listen(req.rec.ID, req.onEvent)
	}
	ai.queue <- &job{run: req} // never blocks: the queue has room for every reserved place
	return nil
}

// enqueueJob queues a job that takes no place among the runs.
func (h *Host) enqueueJob(ai *agentInstance, j *job) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return newError(503, errInterrupted, "the host is shutting down")
	}
	select {
	case ai.queue <- j:
		return nil
	default:
		return newError(429, errBusy, fmt.Sprintf("agent instance %s/%s has too many jobs waiting", ai.key.agent, ai.key.id))
	}
}

// work runs the agent instance's jobs one by one, and retires it (module
// instance and database closed) after the idle timeout, when evicted to
// make room, or at Close.
func (h *Host) work(ai *agentInstance) {
	defer h.workers.Done()
	defer ai.shutdown()
	idle := time.NewTimer(h.cfg.idle)
	defer idle.Stop()
	for {
		select {
		case j, ok := <-ai.queue:
			if !ok {
				h.interruptQueued(ai)
				return
			}
			idle.Stop()
			if j.destroy != nil {
				j.destroy <- h.destroy(ai)
			} else {
				h.mu.Lock()
				ai.waiting--
				taken := j.run.taken // by Cancel, which ended it
				j.run.taken = true
				h.mu.Unlock()
				if !taken {
					h.setRunning(ai, true)
					h.execute(ai, j.run)
					h.setRunning(ai, false)
				}
			}
			idle.Reset(h.cfg.idle)
		case <-idle.C:
			if h.retire(ai) {
				ai.logger.Debug("agent instance idle: module instance dropped")
				return
			}
			idle.Reset(h.cfg.idle)
		case <-ai.evict:
			if h.retire(ai) {
				ai.logger.Debug("agent instance evicted to make room for another module instance")
				return
			}
		}
	}
}

// interruptQueued ends, at Close, the runs still queued: they stay in the
// ledger (those recorded), for the next host to resume.
func (h *Host) interruptQueued(ai *agentInstance) {
	for j := range ai.queue {
		if j.destroy != nil {
			j.destroy <- errShutdown
			continue
		}
		h.mu.Lock()
		ai.waiting--
		taken := j.run.taken
		j.run.taken = true
		h.mu.Unlock()
		if !taken {
			h.interrupted(ai, j.run)
			h.release(ai, j.run)
		}
	}
}

// retire removes ai from the host unless jobs wait for it or it is held.
func (h *Host) retire(ai *agentInstance) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(ai.queue) > 0 || ai.refs > 0 || h.closed {
		return false
	}
	delete(h.instances, ai.key)
	ai.live = false
	ai.feed.close()
	return true
}

func (h *Host) setRunning(ai *agentInstance, running bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ai.running = running
	if !running {
		ai.lastUsed = time.Now()
		ai.live = ai.mi != nil
	}
}

// makeRoom is called before ai instantiates a module instance: when the
// host already has its maximum live, the least recently used idle agent
// instance is asked to retire. If every live one is running, the host goes
// over its maximum for a while rather than fail the run.
func (h *Host) makeRoom(ai *agentInstance) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ai.live = true
	live := 0
	var lru *agentInstance
	for _, o := range h.instances {
		if !o.live {
			continue
		}
		live++
		if o != ai && !o.running && (lru == nil || o.lastUsed.Before(lru.lastUsed)) {
			lru = o
		}
	}
	if live > h.cfg.maxInstances && lru != nil {
		lru.live = false // counted as gone from now: one eviction per new instance
		select {
		case lru.evict <- struct{}{}:
		default:
		}
	}
}

// destroy deletes ai's state, in its worker, between runs: the module
// instance goes (it remembers the database's schema), then the database,
// and every stream of the instance's events ends.
func (h *Host) destroy(ai *agentInstance) error {
	if ai.mi != nil {
		ai.mi.close(context.Background())
		ai.mi = nil
	}
	// The sandbox first (a container's process and files; the empty kind
	// lives in the database), as on the Worker: if it cannot be destroyed,
	// the state stays, and the DELETE can be sent again.
	if err := h.destroySandbox(context.Background(), ai.key.agent, ai.key.id); err != nil {
		return &sandboxError{err}
	}
	err := ai.inst.Destroy()
	h.mu.Lock()
	ai.feed.close()
	h.newFeed(ai)
	h.mu.Unlock()
	ai.logger.Info("agent instance deleted")
	return err
}

// execute runs req to its end (or its interruption), recording each step
// in the ledger and the event log: started (running, attempt n), then
// done, failed or canceled. A module instance that traps is replaced and
// the run starts again, up to MaxAttempts.
func (h *Host) execute(ai *agentInstance, req *runRequest) {
	defer h.release(ai, req)
	recorded := req.rec.Mode != ModeSync && req.rec.Mode != ModeCLI || req.rec.Attempts > 0
	if context.Cause(req.ctx) != nil {
		if !recorded {
			req.answer = h.cancelAnswer(req.ctx)
			return
		}
		h.endCanceled(ai, req, req.ctx)
		return
	}
	for {
		if recorded {
			rec, err := ai.inst.StartRun(req.ctx, req.rec.ID)
			if err != nil {
				h.fail(ai, req, recorded, newError(500, errInternal, err.Error()))
				return
			}
			req.rec = rec
			if rec.Attempts > MaxAttempts {
				h.fail(ai, req, recorded, newError(500, errInterrupted, fmt.Sprintf(
					"run %s was started %d times and interrupted each time (its module instance or its process was lost); it is not started again", rec.ID, MaxAttempts)))
				return
			}
		} else {
			req.rec.Attempts = 1
		}
		out, started, err := h.attempt(ai, req, &recorded)
		if err != nil && isTrap(err) {
			// Only this agent instance's module instance is lost; its
			// state is what the committed batches wrote.
			ai.logger.Error("module instance trapped; dropped", "run", req.rec.ID, "attempt", req.rec.Attempts, "err", err)
			ai.mi.close(context.Background())
			ai.mi = nil
			if !recorded || req.rec.Attempts >= MaxAttempts || context.Cause(req.ctx) != nil {
				h.fail(ai, req, recorded, newError(500, errModuleTrap, "the module instance trapped; it is recreated for the next run"))
				return
			}
			continue
		}
		if err != nil {
			ai.logger.Error("run", "run", req.rec.ID, "err", err)
			h.fail(ai, req, recorded, newError(500, errInternal, err.Error()))
			return
		}
		h.end(ai, req, recorded, started, out)
		return
	}
}

// attempt starts the run once on ai's module instance (created if need
// be) and drives it to its end. It records a sync or CLI run when the
// guest has accepted its payload, and appends run.start before the run's
// first events.
func (h *Host) attempt(ai *agentInstance, req *runRequest, recorded *bool) (wire.Output, bool, error) {
	ctx := req.ctx
	if ai.mi == nil {
		h.makeRoom(ai)
		mi, err := h.eng.instantiate(context.WithoutCancel(ctx), ai.logger)
		if err != nil {
			ai.logger.Error("instantiate", "err", err)
			return wire.Output{}, false, &trapError{err}
		}
		ai.mi = mi
	}
	// The run timeout counts from damper_start, as on the Worker: creating
	// the module instance is the host's time, not the run's.
	if h.cfg.runTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, h.cfg.runTimeout, errRunTimeout)
		defer cancel()
	}
	t := h.core.NewTask(ai.mi.newTaskID(), req.rec.ID, ai.inst, ai.logger)
	t.Model, t.Sandbox, t.Attempt = req.rec.Model, req.rec.Sandbox, req.rec.Attempts
	started := false
	t.OnStarted = func(out *wire.Output) {
		if out.Done && out.Error != nil && !*recorded {
			return // refused before anything ran (invalid_payload): nothing is stored
		}
		if !*recorded {
			rec := req.rec
			if err := ai.inst.RecordRun(ctx, &rec); err == nil {
				if rec, err = ai.inst.StartRun(ctx, rec.ID); err == nil {
					req.rec, *recorded = rec, true
				}
			}
			if !*recorded {
				ai.logger.Warn("the run could not be recorded in the ledger", "run", req.rec.ID)
			}
		}
		started = true
		h.hostEvent(ai, req.rec.ID, event.RunStart{Attempt: req.rec.Attempts, Model: req.rec.Model, Sandbox: req.rec.Sandbox})
	}
	h.openEgress(ai, ai.mi, req.rec.ID)
	out, err := h.core.RunTask(ctx, ai.mi, t, req.rec.Payload)
	h.closeEgress(ai)
	if err == nil && ai.mi.memorySize() > uint32(min(h.cfg.dropAbove, 1<<32-1)) {
		// Linear memory never shrinks: a run that needed much would keep
		// it allocated until the agent instance idles out.
		ai.logger.Info("module instance dropped after its run: its memory grew past the limit", "bytes", ai.mi.memorySize(), "limit", h.cfg.dropAbove)
		ai.mi.close(context.Background())
		ai.mi = nil
	}
	if err == nil && out.Error != nil && out.Error.Type == wire.ErrCanceled && errors.Is(context.Cause(ctx), errRunTimeout) {
		req.cancel(errRunTimeout)
	}
	return out, started, err
}

// end records how a run the guest finished ended.
func (h *Host) end(ai *agentInstance, req *runRequest, recorded, started bool, out wire.Output) {
	if out.Error == nil {
		result := out.Result
		if len(result) == 0 {
			result = json.RawMessage("null")
		}
		if !recorded {
			req.final = req.rec
			req.final.Result, req.final.Status = result, StatusDone
			return
		}
		rec, err := ai.inst.FinishRun(req.ctx, req.rec.ID, StatusDone, result, nil)
		if err != nil {
			ai.logger.Error("record the end of a run", "run", req.rec.ID, "err", err)
			rec = req.rec
			rec.Status, rec.Result = StatusDone, result
		}
		req.final = rec
		h.hostEvent(ai, rec.ID, event.RunFinish{Result: result, Usage: rec.Usage, Cost: rec.Cost, DurationMs: duration(rec)})
		return
	}
	if out.Error.Type == wire.ErrCanceled && context.Cause(req.ctx) != nil {
		if !recorded {
			req.answer = h.cancelAnswer(req.ctx)
			return
		}
		h.endCanceled(ai, req, req.ctx)
		return
	}
	e := errorOf(out.Error)
	if !started && !recorded {
		req.answer = e // refused before anything ran: nothing was stored
		return
	}
	h.fail(ai, req, recorded, e)
}

// endCanceled records a canceled run, or leaves an interrupted one (the
// host is closing) for the next host to resume.
func (h *Host) endCanceled(ai *agentInstance, req *runRequest, ctx context.Context) {
	cause := context.Cause(ctx)
	if errors.Is(cause, errShutdown) {
		h.interrupted(ai, req)
		return
	}
	reason, msg := event.CancelRequested, "the run was canceled"
	var cc *cancelCause
	switch {
	case errors.As(cause, &cc):
		reason, msg = cc.reason, cc.message
	case errors.Is(cause, errRunTimeout):
		reason = event.CancelTimeout
		msg = fmt.Sprintf("the run did not finish within the run timeout (%s) and was canceled; what it committed stays", h.cfg.runTimeout)
	}
	werr := &wire.Error{Type: wire.ErrCanceled, Message: msg, Status: 500}
	if reason == event.CancelTimeout {
		werr.Status = 504
	}
	rec, err := ai.inst.FinishRun(context.WithoutCancel(ctx), req.rec.ID, StatusCanceled, nil, werr)
	if err != nil {
		ai.logger.Error("record the end of a run", "run", req.rec.ID, "err", err)
		rec = req.rec
		rec.Status = StatusCanceled
	}
	req.final = rec
	req.answer = errorOf(werr)
	h.hostEvent(ai, rec.ID, event.RunCancel{Reason: reason, Message: msg, Usage: rec.Usage, Cost: rec.Cost, DurationMs: duration(rec)})
}

// interrupted leaves a run unfinished in the ledger, for Resume.
func (h *Host) interrupted(ai *agentInstance, req *runRequest) {
	req.final = req.rec
	if req.rec.Mode == ModeSync && req.rec.Attempts == 0 || req.rec.Mode == ModeCLI {
		req.answer = newError(503, errInterrupted, "the host shut down before the run ended")
		return
	}
	req.answer = newError(503, errInterrupted, fmt.Sprintf("the host shut down while run %s was unfinished; it starts again when the host does (GET /agents/%s/%s/runs/%s)",
		req.rec.ID, req.key.agent, req.key.id, req.rec.ID))
}

// release forgets a run this process has ended or interrupted, and wakes
// its waiters.
func (h *Host) release(ai *agentInstance, req *runRequest) {
	if req.final.ID == "" {
		req.final = req.rec
	}
	if req.answer != nil && req.final.Error == nil && req.final.Status != StatusDone {
		// A run that ended before the ledger had it: Wait tells its end.
		req.final.Error = &wire.Error{Type: req.answer.Type, Message: req.answer.Message, Status: req.answer.Status}
		if req.final.Status == StatusQueued || req.final.Status == StatusRunning || req.final.Status == "" {
			req.final.Status = StatusFailed
			if req.answer.Type == wire.ErrCanceled {
				req.final.Status = StatusCanceled
			}
		}
	}
	h.mu.Lock()
	delete(h.runs, req.rec.ID)
	h.mu.Unlock()
	ai.feed.unlisten(req.rec.ID)
	req.cancel(nil)
	close(req.done)
	if req.onEnd != nil {
		req.onEnd(req.final)
	}
}

// cancelAnswer is the error for a caller whose run was canceled before
// it was recorded.
func (h *Host) cancelAnswer(ctx context.Context) *Error {
	cause := context.Cause(ctx)
	var cc *cancelCause
	switch {
	case errors.Is(cause, errShutdown):
		return newError(503, errInterrupted, "the host is shutting down")
	case errors.As(cause, &cc):
		return newError(500, wire.ErrCanceled, cc.message)
	}
	return errorOf(host.CanceledError(ctx))
}

// fail records a failed run.
func (h *Host) fail(ai *agentInstance, req *runRequest, recorded bool, e *Error) {
	req.answer = e
	if !recorded {
		req.final = req.rec
		req.final.Status = StatusFailed
		return
	}
	werr := &wire.Error{Type: e.Type, Message: e.Message, Status: e.Status}
	rec, err := ai.inst.FinishRun(context.WithoutCancel(req.ctx), req.rec.ID, StatusFailed, nil, werr)
	if err != nil {
		ai.logger.Error("record the end of a run", "run", req.rec.ID, "err", err)
		rec = req.rec
		rec.Status = StatusFailed
	}
	req.final = rec
	h.hostEvent(ai, rec.ID, event.RunError{ErrorType: e.Type, Message: e.Message, Status: e.Status, Usage: rec.Usage, Cost: rec.Cost, DurationMs: duration(rec)})
}

// finishOrphan cancels a run recorded in a ledger but not queued in this
// process (interrupted by the loss of another).
func (h *Host) finishOrphan(ctx context.Context, key instanceKey, r Run, reason string) (Run, error) {
	ai, release, err := h.acquire(key)
	if err != nil {
		return Run{}, err
	}
	defer release()
	msg := cancelMessage(reason)
	rec, err := ai.inst.FinishRun(ctx, r.ID, StatusCanceled, nil, &wire.Error{Type: wire.ErrCanceled, Message: msg, Status: 500})
	if err != nil {
		return Run{}, newError(500, errInternal, err.Error())
	}
	h.hostEvent(ai, rec.ID, event.RunCancel{Reason: reason, Message: msg, Usage: rec.Usage, Cost: rec.Cost, DurationMs: duration(rec)})
	return rec, nil
}

// hostEvent appends an event the host writes (run.start, run.finish, ...).
func (h *Host) hostEvent(ai *agentInstance, run string, p event.Payload) {
	raw, err := json.Marshal(p)
	if err == nil {
		_, err = ai.inst.AppendEvents(context.Background(), run, []wire.Event{{Type: string(p.Type()), Data: raw}})
	}
	if err == nil && event.Terminal(p.Type()) {
		// A run's end is on disk before the host answers for it.
		err = ai.inst.Flush(context.Background())
	}
	if err != nil {
		ai.logger.Error("an event of the host was lost", "run", run, "type", p.Type(), "err", err)
	}
}

// duration is how long a run took, from its first start.
func duration(r Run) int64 {
	if r.Started.IsZero() {
		return 0
	}
	end := r.Finished
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(r.Started).Milliseconds()
}

func (ai *agentInstance) shutdown() {
	if ai.mi != nil {
		ai.mi.close(context.Background())
		ai.mi = nil
	}
	if err := ai.inst.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		ai.logger.Warn("close database", "err", err)
	}
}

// dbPath is where an agent instance's database lives:
// DIR/<agent>/<id>.sqlite, each name escaped by fileName.
func dbPath(dir, agent, id string) string {
	return filepath.Join(dir, fileName(agent), fileName(id)+".sqlite")
}

// fileName maps a valid name (A-Z a-z 0-9 . _ -) to a file name that no
// other name maps to, even on a case-insensitive file system (macOS and
// Windows by default), where "Foo" and "foo" would otherwise share one
// database while being two agent instances with two queues: '_' becomes
// "__" and an upper-case letter '_' and its lower case. Lower-case names
// are unchanged.
func fileName(name string) string {
	if strings.IndexFunc(name, func(r rune) bool { return r == '_' || ('A' <= r && r <= 'Z') }) < 0 {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == '_':
			b.WriteString("__")
		case 'A' <= r && r <= 'Z':
			b.WriteByte('_')
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
