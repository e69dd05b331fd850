// Package local runs a damper module under wazero: the local host behind
// `damper run` and `damper serve`. It speaks the module ABI of docs/abi.md
// and serves the HTTP API of docs/http.md, like the Workers host.
//
// A Host compiles the module once and keeps one module instance per live
// agent instance, dropped when idle, when it traps, when it grew past a
// size, or when the host needs room for another; runs of one agent instance
// are serialized in arrival order, different agent instances run
// concurrently. State lives in one SQLite file per agent instance.
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
)

// Error types the host answers with, besides the guest's own (docs/http.md).
const (
	errInvalidName  = "invalid_name"
	errInvalidJSON  = "invalid_json"
	errUnauthorized = "unauthorized"
	errNotFound     = "not_found"
	errMethod       = "method_not_allowed"
	errTooLarge     = "payload_too_large"
	errBusy         = "busy"
	errModuleTrap   = "module_trap"
	errInternal     = "internal"
)

// Host runs one damper module. It is safe for concurrent use.
type Host struct {
	cfg       Config
	eng       *engine
	manifest  wire.Manifest
	agents    map[string]bool
	core      *host.Core
	sandboxes *sandboxhost.Host // the local and container kinds (local/sandbox.go)

	ctx    context.Context // ends at Close: cancels every run
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	instances map[instanceKey]*agentInstance
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
	onEvent func(Event)
}

// OnEvent calls fn with every event the run emits, in order, while it runs.
// fn must not block for long: the run's effects wait for it.
func OnEvent(fn func(Event)) RunOption {
	return func(o *runOptions) { o.onEvent = fn }
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
	opts := host.Options{
		Transport: cfg.transport,
		Secrets:   cfg.secrets,
		Targets:   cfg.targets,
		Logger:    cfg.logger,
		Model:     cfg.model,
		Sandbox:   cfg.sandbox,
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
	h.ctx, h.cancel = context.WithCancel(context.Background())
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
// time in arrival order.
//
// Every failure is an *Error whose Status is the HTTP status to answer
// with (docs/http.md): the guest's own errors (invalid_payload,
// agent_error, …) and the host's (invalid_name, invalid_json, not_found,
// busy, module_trap, internal).
func (h *Host) Run(ctx context.Context, agent, id string, payload json.RawMessage, opts ...RunOption) (RunResult, error) {
	var o runOptions
	for _, opt := range opts {
		opt(&o)
	}
	if !ValidName(agent) || !ValidName(id) {
		return RunResult{}, newError(400, errInvalidName, "agent and id are 1 to 128 of A-Z a-z 0-9 . _ -, and neither . nor ..")
	}
	if !h.agents[agent] {
		return RunResult{}, h.unknownAgent(agent)
	}
	if len(payload) == 0 {
		payload = json.RawMessage("null")
	} else if !json.Valid(payload) {
		return RunResult{}, newError(400, errInvalidJSON, "the payload is not one JSON value")
	}
	req := &runRequest{
		ctx:     ctx,
		run:     newRunID(),
		payload: payload,
		onEvent: o.onEvent,
		done:    make(chan runResponse, 1),
	}
	if err := h.enqueue(instanceKey{agent, id}, req); err != nil {
		return RunResult{}, err
	}
	select {
	case r := <-req.done:
		return r.result, r.err
	case <-ctx.Done():
		// The worker sees the context too: it skips the run if it has not
		// started, or cancels it in the guest.
		return RunResult{}, errorOf(host.CanceledError(ctx))
	}
}

// unknownAgent is the 404 for a run of an agent the module does not have.
func (h *Host) unknownAgent(name string) *Error {
	names := make([]string, len(h.manifest.Agents))
	for i, a := range h.manifest.Agents {
		names[i] = a.Name
	}
	return newError(404, errNotFound, wire.UnknownAgentMessage(name, names))
}

// Close cancels every run, drops every module instance and closes every
// database. It waits for the runs' cancellation to finish, or for ctx.
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
	h.cancel()

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

type runRequest struct {
	ctx     context.Context
	run     string
	payload json.RawMessage
	onEvent func(Event)
	done    chan runResponse // buffered: the worker never waits for the caller
}

type runResponse struct {
	result RunResult
	err    error
}

// agentInstance is the host's state for one (agent, id): its queue of runs,
// its module instance while live, and its database.
type agentInstance struct {
	key    instanceKey
	queue  chan *runRequest // runs waiting; the running one has left it
	evict  chan struct{}    // asks an idle worker to retire, to make room
	logger *slog.Logger
	mi     *moduleInstance // nil until the first run, and after a trap
	inst   *host.Instance
	egress egressGate // the running run's module instance, for its sandbox's egress tasks

	// Under Host.mu: whether it has a module instance, is running a run,
	// and when its last run ended, for choosing whom to evict.
	live     bool
	running  bool
	lastUsed time.Time
}

// enqueue queues req for its agent instance, starting the instance's worker
// if it has none. Under h.mu, so a worker that retires for idleness never
// strands a run.
func (h *Host) enqueue(key instanceKey, req *runRequest) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return newError(500, errInternal, "the host is shutting down")
	}
	ai, ok := h.instances[key]
	if !ok {
		ai = &agentInstance{
			key:    key,
			queue:  make(chan *runRequest, h.cfg.maxQueue),
			evict:  make(chan struct{}, 1),
			logger: h.cfg.logger.With("agent", key.agent, "id", key.id),
			inst:   h.core.NewInstance(key.agent, key.id, dbPath(h.cfg.dataDir, key.agent, key.id)),
		}
		h.instances[key] = ai
		h.workers.Add(1)
		go h.work(ai)
	}
	select {
	case ai.queue <- req:
		return nil
	default:
		return newError(429, errBusy, fmt.Sprintf("agent instance %s/%s already has %d runs waiting", key.agent, key.id, cap(ai.queue)))
	}
}

// work runs the agent instance's runs one by one, and retires it (module
// instance and database closed) after the idle timeout, when evicted to
// make room, or at Close.
func (h *Host) work(ai *agentInstance) {
	defer h.workers.Done()
	defer ai.shutdown()
	idle := time.NewTimer(h.cfg.idle)
	defer idle.Stop()
	for {
		select {
		case req, ok := <-ai.queue:
			if !ok {
				return
			}
			idle.Stop()
			h.setRunning(ai, true)
			result, err := h.execute(ai, req)
			h.setRunning(ai, false)
			req.done <- runResponse{result, err}
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

// retire removes ai from the host unless runs wait for it.
func (h *Host) retire(ai *agentInstance) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(ai.queue) > 0 || h.closed {
		return false
	}
	delete(h.instances, ai.key)
	ai.live = false
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

func (h *Host) execute(ai *agentInstance, req *runRequest) (RunResult, error) {
	if err := req.ctx.Err(); err != nil {
		return RunResult{}, errorOf(host.CanceledError(req.ctx))
	}
	if h.ctx.Err() != nil {
		return RunResult{}, newError(500, errInternal, "the host is shutting down")
	}
	ctx, cancel := context.WithCancel(req.ctx)
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	if ai.mi == nil {
		h.makeRoom(ai)
		mi, err := h.eng.instantiate(context.WithoutCancel(ctx), ai.logger)
		if err != nil {
			ai.logger.Error("instantiate", "err", err)
			return RunResult{}, newError(500, errModuleTrap, err.Error())
		}
		ai.mi = mi
	}
	// The run timeout counts from damper_start, as on the Worker: creating
	// the module instance is the host's time, not the run's.
	if h.cfg.runTimeout > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeoutCause(ctx, h.cfg.runTimeout, errRunTimeout)
		defer cancelT()
	}
	t := h.core.NewTask(ai.mi.newTaskID(), req.run, ai.inst, ai.logger)
	debug := ai.logger.Enabled(ctx, slog.LevelDebug)
	if req.onEvent != nil || debug {
		t.OnEvent = func(ev wire.Event) {
			if debug {
				ai.logger.Debug("event", "type", ev.Type, "run", ev.Run, "data", string(ev.Data))
			}
			if req.onEvent != nil {
				req.onEvent(Event(ev))
			}
		}
	}
	h.openEgress(ai, ai.mi, req.run, t.OnEvent)
	out, err := h.core.RunTask(ctx, ai.mi, t, req.payload)
	h.closeEgress(ai)
	if err == nil && ai.mi.memorySize() > uint32(min(h.cfg.dropAbove, 1<<32-1)) {
		// Linear memory never shrinks: a run that needed much would keep
		// it allocated until the agent instance idles out.
		ai.logger.Info("module instance dropped after its run: its memory grew past the limit", "bytes", ai.mi.memorySize(), "limit", h.cfg.dropAbove)
		ai.mi.close(context.Background())
		ai.mi = nil
	}
	if err != nil {
		if isTrap(err) {
			// Only this agent instance's module instance is lost; its state
			// is what the committed batches wrote.
			ai.logger.Error("module instance trapped; dropped", "run", req.run, "err", err)
			ai.mi.close(context.Background())
			ai.mi = nil
			return RunResult{}, newError(500, errModuleTrap, "the module instance trapped; it is recreated for the next run")
		}
		ai.logger.Error("run", "run", req.run, "err", err)
		return RunResult{}, newError(500, errInternal, err.Error())
	}
	if out.Error != nil {
		e := errorOf(out.Error)
		if e.Type == wire.ErrCanceled && errors.Is(context.Cause(ctx), errRunTimeout) {
			// The Worker answers the same (worker/runner.js).
			e.Status = 504
			e.Message = fmt.Sprintf("the run did not finish within the run timeout (%s) and was canceled; what it committed stays", h.cfg.runTimeout)
		}
		return RunResult{}, e
	}
	result := out.Result
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	return RunResult{Run: req.run, Result: result}, nil
}

// errRunTimeout is the cause of a run's context when its run timeout passed.
var errRunTimeout = errors.New("the run timeout passed")

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
