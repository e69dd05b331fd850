package local

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/damperdev/damper/internal/sandboxhost"
	"github.com/damperdev/damper/internal/wire"
)

// sandboxConfig configures the sandbox kinds the local host performs.
type sandboxConfig struct {
	localDir string
	localEnv []string
	sandboxd []string
	idle     time.Duration
	isolate  string
}

// WithLocalSandbox sets the local kind's working directory (default: the
// directory the host was started in) and the names of host environment
// variables its commands get besides the allowlist (PATH, HOME, the
// locale, TMPDIR, ...).
func (c Config) WithLocalSandbox(dir string, env ...string) Config {
	c.sandboxes.localDir, c.sandboxes.localEnv = dir, env
	return c
}

// WithSandboxd offers the container kind: argv runs sandboxd (damper
// runs itself: `damper sandboxd`), one child process per agent instance
// in DATA/<agent>/<id>.container, put to sleep after idle without an
// operation (0: 10 minutes), with a network namespace of its own per
// isolate ("auto": where the host may create one; "off"; "require").
func (c Config) WithSandboxd(argv []string, idle time.Duration, isolate string) Config {
	c.sandboxes.sandboxd, c.sandboxes.idle, c.sandboxes.isolate = argv, idle, isolate
	return c
}

func newSandboxes(cfg Config, egress sandboxhost.Egress) (*sandboxhost.Host, error) {
	dir := cfg.sandboxes.localDir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("the local sandbox's directory: %w", err)
		}
		dir = wd
	}
	return sandboxhost.New(sandboxhost.Config{
		LocalDir: dir,
		LocalEnv: cfg.sandboxes.localEnv,
		Sandboxd: cfg.sandboxes.sandboxd,
		ContainerDir: func(agent, id string) string {
			return filepath.Join(cfg.dataDir, fileName(agent), fileName(id)+".container")
		},
		Egress:  egress,
		Idle:    cfg.sandboxes.idle,
		Isolate: cfg.sandboxes.isolate,
		Logger:  cfg.logger,
	})
}

// destroySandbox stops the container of agent instance (agent, id) and
// removes its files; the empty kind's files go with the instance's
// database. Delete (DELETE /agents/{agent}/{id}) calls it.
func (h *Host) destroySandbox(ctx context.Context, agent, id string) error {
	return h.sandboxes.Destroy(ctx, agent, id)
}

// egressGate lets the egress tasks of an agent instance's sandbox run on
// the module instance of its running run: sandboxd kills a command's
// processes when it ends, so a sandbox sends requests only while a run
// performs one of its operations. A request at another time is denied.
type egressGate struct {
	mi    *moduleInstance // nil: no run is open to egress
	run   string
	tasks sync.WaitGroup
}

func (h *Host) openEgress(ai *agentInstance, mi *moduleInstance, run string) {
	h.mu.Lock()
	ai.egress.mi, ai.egress.run = mi, run
	h.mu.Unlock()
}

// closeEgress ends the run's egress and waits for its tasks in flight,
// before anyone may drop the module instance.
func (h *Host) closeEgress(ai *agentInstance) {
	h.mu.Lock()
	ai.egress.mi = nil
	h.mu.Unlock()
	ai.egress.tasks.Wait()
}

// egress decides one request of (agent, id)'s sandbox with an egress
// task on the module instance of its running run, and sends it when the
// policy allows.
func (h *Host) egress(ctx context.Context, agent, id string, req wire.EgressRequest) (*sandboxhost.Outcome, error) {
	h.mu.Lock()
	ai := h.instances[instanceKey{agent, id}]
	if ai == nil || ai.egress.mi == nil {
		h.mu.Unlock()
		return &sandboxhost.Outcome{Decision: wire.EgressDecision{Method: req.Method, URL: req.URL, Reason: "no_run",
			Detail: "a sandbox's requests are decided during a run of its agent instance, and none is running"}}, nil
	}
	mi, run := ai.egress.mi, ai.egress.run
	ai.egress.tasks.Add(1)
	h.mu.Unlock()
	defer ai.egress.tasks.Done()

	payload, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	t := h.core.NewTask(mi.newTaskID(), run, ai.inst, ai.logger)
	t.Kind = wire.KindEgress
	out, err := h.core.RunTask(ctx, mi, t, payload)
	if err != nil {
		return nil, fmt.Errorf("egress task: %w", err)
	}
	if out.Error != nil {
		return nil, fmt.Errorf("egress task: %s", out.Error.Error())
	}
	var d wire.EgressDecision
	if err := json.Unmarshal(out.Result, &d); err != nil {
		return nil, fmt.Errorf("egress task: malformed decision: %w", err)
	}
	o := &sandboxhost.Outcome{Decision: d}
	if !d.Allow {
		return o, nil
	}
	if d.Request == nil {
		return nil, fmt.Errorf("egress task: an allow without a request")
	}
	status, headers, body, werr := t.Send(ctx, *d.Request)
	if werr != nil {
		return nil, fmt.Errorf("%s", werr.Message)
	}
	o.Status, o.Header, o.Body = status, headers, body
	return o, nil
}
