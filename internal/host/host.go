// Package host is the Go host core: what a host does with a module's
// effects, whatever runs the module. The wazero host (local/) and the
// in-process test host (runtime/agent/agenttest) both perform effects here,
// so a test under agenttest sees exactly the rules of both hosts: the SQL
// rules of a Durable Object, secrets substituted only for the origins that
// own them and scrubbed from everything handed back, target overrides, and
// the bounds on what a task may hold. The Workers host (worker/) mirrors it
// file for file where the platform allows.
//
// A Core is built once per module from its manifest. Each agent instance
// has an Instance (its database and its share of the body budget); each
// task in flight has a Task (its run, its listener, the stream handles it
// holds). RunTask drives a task through a Guest (a module instance) to its
// end.
package host

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/damperdev/damper/internal/safedial"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

// Options configure a Core. The zero value is usable: the real network,
// public addresses only but for the policies' targets (safedial), secrets
// from nowhere, no target override, no logs, real
// sleeps and the default limits.
type Options struct {
	// Transport sends the requests of fetch effects; nil connects only to
	// public addresses and to the origins of the policies' services (with
	// the overrides applied), whatever their addresses. It must send exactly
	// the request's URL; a RoundTripper never follows redirects. The core
	// fills in secrets before calling it (the request holds their values:
	// it must not log them) and scrubs them from what it returns.
	Transport http.RoundTripper
	// Secrets looks up a secret's value by name. The core asks only for
	// the names the agents' policies list, once, in New.
	Secrets func(name string) (string, bool)
	// Targets point services of the agents' policies elsewhere: service
	// name to "scheme://host[:port]", checked and made canonical by New.
	Targets map[string]string
	// Model and Sandbox reach the guest in every start (wire.Start): the
	// default model and the sandbox kind the host asks for.
	Model, Sandbox string
	// Logger receives the log effects of tasks that have no logger of
	// their own.
	Logger *slog.Logger
	// Sleep waits for a sleep effect; nil waits in real time. agenttest
	// passes one that only adds up the time.
	Sleep func(ctx context.Context, d time.Duration) error
	// Limits bound what tasks may hold; zero fields take the defaults.
	Limits Limits
	// EventRetention is how many events each agent instance's log keeps
	// (the newest); zero means DefaultEventRetention.
	EventRetention int
	// Telemetry, when set, has every run export its spans (wire.Telemetry).
	Telemetry *wire.Telemetry
	// DiscardEvents numbers and publishes events but never writes them:
	// for benchmarks that measure what persisting them costs.
	DiscardEvents bool
	// OnBatch, when set, sees every batch before it is performed (tests).
	OnBatch func(t *Task, effects []wire.Effect)
	// Perform adds effect types to the dispatch table or replaces one, by
	// type (for effects only one host performs).
	Perform map[string]Performer
}

// Limits bound the memory a host spends on one agent instance's tasks.
type Limits struct {
	// WholeBody caps a response body returned whole (not streamed).
	WholeBody int64
	// BodiesInFlight caps the whole-body bytes one agent instance's tasks
	// hold at once, from the read of a body until the guest has it: a
	// whole body crosses the ABI as base64 inside JSON and is copied into
	// wasm memory, which never shrinks. A fetch beyond it fails with a
	// fetch_error that says to stream.
	BodiesInFlight int64
}

func (l Limits) withDefaults() Limits {
	if l.WholeBody <= 0 {
		l.WholeBody = wire.MaxWholeBody
	}
	if l.BodiesInFlight <= 0 {
		l.BodiesInFlight = wire.MaxBodiesInFlight
	}
	return l
}

// MaxResponseHead bounds a response's head on the default transport
// (wire.MaxResponseHead). Go's own default, 10 MiB a response, is not
// counted in the whole-body budget; and a response that fails on Workers
// should fail locally too.
const MaxResponseHead = wire.MaxResponseHead

// Performer performs one effect type for a task: it decodes args and
// returns the value to encode, or the effect's error. It must not panic.
type Performer func(ctx context.Context, c *Core, t *Task, args []byte) (any, *wire.Error)

// Core performs effects for the tasks of one module's agents. It is safe
// for concurrent use.
type Core struct {
	transport http.RoundTripper
	targets   map[string]string        // canonical overrides, passed in every start
	model     string                   // the default model, passed in every start
	sandbox   string                   // the sandbox kind override, passed in every start
	secrets   map[string]*agentSecrets // by agent
	table     map[string]Performer     // the dispatch table, by effect type
	logger    *slog.Logger
	sleep     func(ctx context.Context, d time.Duration) error
	limits    Limits
	retention int
	telemetry *wire.Telemetry
	collector string // the telemetry endpoint's origin: requests there are scrubbed (fetch.go)
	discard   bool
	onBatch   func(t *Task, effects []wire.Effect)
	counters  Counters
}

// Counters count what the core holds, so tests can see it all released.
type Counters struct {
	Streams atomic.Int64 // open stream handles
	Effects atomic.Int64 // effects being performed
}

// New returns a Core for the agents of m: it compiles each agent's policy
// with the target overrides applied (a policy that does not compile, or an
// override that is not an origin, is an error) and reads the values of the
// secrets the policies name. It logs each override once, and warns of one
// that names no service of any agent.
func New(m wire.Manifest, o Options) (*Core, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Secrets == nil {
		o.Secrets = func(string) (string, bool) { return "", false }
	}
	targets := make(map[string]string, len(o.Targets))
	for name, t := range o.Targets {
		c, err := CanonicalTarget(name, t)
		if err != nil {
			return nil, err
		}
		targets[name] = c
	}
	secrets, origins, err := loadSecrets(m, targets, o.Secrets, o.Logger)
	if err != nil {
		return nil, err
	}
	if o.Transport == nil {
		d, err := safedial.New(origins)
		if err != nil {
			return nil, err
		}
		t := d.Transport()
		t.MaxResponseHeaderBytes = MaxResponseHead
		o.Transport = t
	}
	switch o.Sandbox {
	case "", "empty", "local", "container":
	default:
		return nil, fmt.Errorf("sandbox kind %q: want empty, local or container", o.Sandbox)
	}
	c := &Core{
		transport: o.Transport,
		targets:   targets,
		model:     o.Model,
		sandbox:   o.Sandbox,
		secrets:   secrets,
		logger:    o.Logger,
		sleep:     o.Sleep,
		limits:    o.Limits.withDefaults(),
		retention: o.EventRetention,
		telemetry: o.Telemetry,
		collector: collectorOrigin(o.Telemetry),
		discard:   o.DiscardEvents,
		onBatch:   o.OnBatch,
		table:     make(map[string]Performer, len(performers)+len(o.Perform)),
	}
	for typ, p := range performers {
		c.table[typ] = p
	}
	for typ, p := range o.Perform {
		c.table[typ] = p
	}
	if c.retention <= 0 {
		c.retention = DefaultEventRetention
	}
	return c, nil
}

// CheckManifest checks m as New would, without secrets: every agent's
// policy must compile. damper build runs it, so a broken policy fails the
// build rather than the agent's first request.
func CheckManifest(m wire.Manifest) error {
	_, _, err := loadSecrets(m, nil, func(string) (string, bool) { return "", false }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return err
}

// Targets returns the canonical target overrides, for the guest's starts.
func (c *Core) Targets() map[string]string { return c.targets }

// Counters returns the core's counters.
func (c *Core) Counters() *Counters { return &c.counters }

// Instance is the host's state for one agent instance (agent, id) that its
// tasks share: its database, opened on first use, with the host's event
// log and run ledger in it, and its share of the whole-body budget.
type Instance struct {
	Agent, ID string
	path      string // the database file; "" keeps it in memory

	mu        sync.Mutex
	db        *Store
	hostReady bool // the host tables are migrated in db

	core      *Core
	log       eventLog
	onAppend  atomic.Pointer[func([]event.Envelope)]
	retention int
	finishes  int // runs finished, for pruning the ledger now and then

	bodies budget
}

// NewInstance returns the state of agent instance (agent, id), with its
// database at path (created on first use; "" for one in memory that lives
// as long as the Instance).
func (c *Core) NewInstance(agent, id, path string) *Instance {
	return &Instance{Agent: agent, ID: id, path: path, core: c, retention: c.retention, bodies: budget{limit: c.limits.BodiesInFlight}}
}

// Store returns the instance's database, opening it on first use, so a run
// that never reaches SQL (bad input, unknown agent) creates no file.
func (i *Instance) Store(ctx context.Context) (*Store, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.storeLocked(ctx)
}

func (i *Instance) storeLocked(ctx context.Context) (*Store, error) {
	if i.db != nil {
		return i.db, nil
	}
	s, err := OpenStore(ctx, i.path)
	if err != nil {
		return nil, fmt.Errorf("open database of %s/%s: %w", i.Agent, i.ID, err)
	}
	i.db = s
	return s, nil
}

// hostStore returns the database with the host tables migrated.
func (i *Instance) hostStore(ctx context.Context) (*Store, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	s, err := i.storeLocked(ctx)
	if err != nil || i.hostReady {
		return s, err
	}
	if err := s.host(ctx, func(tx *sql.Tx) error { return migrateHost(ctx, tx) }); err != nil {
		return nil, fmt.Errorf("migrate the host tables of %s/%s: %w", i.Agent, i.ID, err)
	}
	i.hostReady = true
	return s, nil
}

// readHost runs fn on the database for a read of the host tables, unless
// there is nothing to read: no database file, or no host tables in it.
// Reading creates nothing.
func (i *Instance) readHost(ctx context.Context, fn func(q querier) error) error {
	i.mu.Lock()
	s, ready := i.db, i.hostReady
	if s == nil && i.path != "" {
		if _, err := os.Stat(i.path); errors.Is(err, os.ErrNotExist) {
			i.mu.Unlock()
			return nil
		}
	}
	var err error
	if s == nil {
		if s, err = i.storeLocked(ctx); err != nil {
			i.mu.Unlock()
			return err
		}
	}
	i.mu.Unlock()
	return s.read(func(q querier) error {
		if !ready {
			ok, err := hasHostTables(ctx, q)
			if err != nil || !ok {
				return err
			}
		}
		return fn(q)
	})
}

// Exists reports whether the instance has stored anything: a database.
func (i *Instance) Exists() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.db != nil || i.path == "" {
		return i.db != nil
	}
	_, err := os.Stat(i.path)
	return err == nil
}

// Close commits the events still pending and closes the instance's
// database; the next Store opens it again.
func (i *Instance) Close() error {
	_ = i.Flush(context.Background())
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.closeLocked()
}

func (i *Instance) closeLocked() error {
	if i.db == nil {
		return nil
	}
	err := i.db.Close()
	i.db, i.hostReady = nil, false
	return err
}

// Destroy closes the database and deletes it, with everything in it (the
// guest's state, the event log, the run ledger): the agent instance
// starts again empty.
func (i *Instance) Destroy() error {
	// Events not yet written go with the rest; the one being written is
	// waited for, and numbering starts again.
	i.log.mu.Lock()
	i.log.pending = nil
	i.log.mu.Unlock()
	_ = i.Flush(context.Background())
	i.log.mu.Lock()
	i.log.loaded, i.log.lastSeq = false, 0
	i.log.mu.Unlock()
	i.mu.Lock()
	defer i.mu.Unlock()
	err := i.closeLocked()
	if i.path == "" {
		return err
	}
	for _, p := range []string{i.path, i.path + "-wal", i.path + "-shm", i.path + "-journal"} {
		if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// Task is the host's side of one task in flight: what its effects need,
// and the stream handles it holds until it ends.
type Task struct {
	ID   string
	Run  string
	Inst *Instance
	// Kind is the task's kind (wire.KindRun when empty).
	Kind string
	// Model and Sandbox, when set, go in the task's start instead of the
	// core's (a run's own choice); Attempt goes there too (wire.Start).
	Model, Sandbox string
	Attempt        int
	// OnStarted, when set, sees damper_start's output before RunTask
	// performs anything of it: a host records the run's start there, so
	// that its events come after it.
	OnStarted func(out *wire.Output)
	Logger    *slog.Logger

	core    *Core
	secrets *agentSecrets

	mu         sync.Mutex
	streams    map[uint64]*stream
	nextHandle uint64
	held       int64 // whole-body bytes taken from Inst's budget for the batch in flight
}

// NewTask returns the host side of task id, a run of inst's agent.
func (c *Core) NewTask(id, run string, inst *Instance, logger *slog.Logger) *Task {
	if logger == nil {
		logger = c.logger
	}
	s := c.secrets[inst.Agent]
	if s == nil {
		s = noSecrets
	}
	return &Task{ID: id, Run: run, Inst: inst, Logger: logger, core: c, secrets: s}
}

// Start returns the start of t with payload: the host's part of it (ids,
// kind, target overrides) filled in.
func (t *Task) Start(payload []byte) wire.Start {
	kind := t.Kind
	if kind == "" {
		kind = wire.KindRun
	}
	return wire.Start{
		Task:      t.ID,
		Kind:      kind,
		Agent:     t.Inst.Agent,
		Instance:  t.Inst.ID,
		Run:       t.Run,
		Payload:   payload,
		Targets:   t.core.targets,
		Model:     cmp.Or(t.Model, t.core.model),
		Sandbox:   cmp.Or(t.Sandbox, t.core.sandbox),
		Attempt:   t.Attempt,
		Telemetry: t.core.telemetry,
	}
}

// Scrub returns s with the task's agent's secrets replaced. Hosts pass
// everything they write about a task through it (errors, log lines).
func (t *Task) Scrub(s string) string { return t.secrets.scrub.String(s) }

type stream struct {
	mu   sync.Mutex // two reads of one handle in one batch take turns
	body io.ReadCloser
}

// AddStream keeps body open under a new handle of the task, which read
// and close effects use and the task's end releases, as a streamed fetch
// body's (a host's own effect that answers a stream, such as a sandbox's
// streamed exec).
func (t *Task) AddStream(body io.ReadCloser) uint64 { return t.addStream(body) }

func (t *Task) addStream(body io.ReadCloser) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.streams == nil {
		t.streams = map[uint64]*stream{}
	}
	t.nextHandle++
	t.streams[t.nextHandle] = &stream{body: body}
	t.core.counters.Streams.Add(1)
	return t.nextHandle
}

func (t *Task) stream(h uint64) *stream {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.streams[h]
}

func (t *Task) releaseStream(h uint64) {
	t.mu.Lock()
	s, ok := t.streams[h]
	delete(t.streams, h)
	t.mu.Unlock()
	if ok {
		s.body.Close()
		t.core.counters.Streams.Add(-1)
	}
}

// Release closes every handle the task still holds; hosts call it when the
// task ends.
func (t *Task) Release() {
	t.releaseBodies()
	t.mu.Lock()
	handles := make([]uint64, 0, len(t.streams))
	for h := range t.streams {
		handles = append(handles, h)
	}
	t.mu.Unlock()
	sort.Slice(handles, func(i, j int) bool { return handles[i] < handles[j] })
	for _, h := range handles {
		t.releaseStream(h)
	}
}

// holdBody takes n bytes of a whole body from the instance's budget until
// the guest has the batch (releaseBodies); false when they do not fit.
func (t *Task) holdBody(n int64) bool {
	if !t.Inst.bodies.take(n) {
		return false
	}
	t.mu.Lock()
	t.held += n
	t.mu.Unlock()
	return true
}

// takeBody counts n bytes of a streamed chunk against the instance's
// budget until the guest has the batch, even past the limit: reads are
// sized to what is left (performRead), so they pass it by little.
func (t *Task) takeBody(n int64) {
	if n == 0 {
		return
	}
	t.Inst.bodies.mu.Lock()
	t.Inst.bodies.used += n
	t.Inst.bodies.mu.Unlock()
	t.mu.Lock()
	t.held += n
	t.mu.Unlock()
}

// unholdBody gives back n bytes holdBody took for a body that failed.
func (t *Task) unholdBody(n int64) {
	if n == 0 {
		return
	}
	t.mu.Lock()
	t.held -= n
	t.mu.Unlock()
	t.Inst.bodies.give(n)
}

func (t *Task) releaseBodies() {
	t.mu.Lock()
	n := t.held
	t.held = 0
	t.mu.Unlock()
	if n > 0 {
		t.Inst.bodies.give(n)
	}
}

// budget is a byte budget shared by the tasks of one agent instance.
type budget struct {
	mu    sync.Mutex
	limit int64
	used  int64
}

// take reserves n bytes, or reports that they would exceed the limit.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return false
	}
	b.used += n
	return true
}

// left is how many bytes are left of the budget.
func (b *budget) left() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.limit-b.used, 0)
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
}

// InFlight is the whole-body bytes the instance's tasks hold now.
func (i *Instance) InFlight() int64 {
	i.bodies.mu.Lock()
	defer i.bodies.mu.Unlock()
	return i.bodies.used
}
