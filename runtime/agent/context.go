package agent

import (
	"fmt"
	"sync"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/internal/guest"
	"github.com/damperdev/damper/runtime/internal/sched"
)

// Context is one run of an agent: what it was asked for, and the only way
// its code reaches outside the module. It is a context.Context, done when
// the host cancels the run or the handler returns.
//
// Use a Context from the handler's goroutine and from goroutines started
// with its Group, not from goroutines started with the go statement: the
// run counts its goroutines to know when all of them wait on the host.
type Context struct {
	task  *sched.Task
	agent *guest.Agent

	// The agent's policy engine with the host's target overrides, looked
	// up at the run's first request.
	engineOnce sync.Once
	engine     *policy.Engine
	engineErr  error
}

// policyEngine returns the engine that decides this run's requests: nil
// when the agent has no policy.
func (c *Context) policyEngine() (*policy.Engine, error) {
	c.engineOnce.Do(func() { c.engine, c.engineErr = c.agent.Engine(c.task.Start().Targets) })
	return c.engine, c.engineErr
}

// Agent is the name of the agent this run belongs to.
func (c *Context) Agent() string { return c.task.Start().Agent }

// Instance is the id of the agent instance this run belongs to: its state,
// its storage and its event log are the instance's.
func (c *Context) Instance() string { return c.task.Start().Instance }

// Run is the id of this run, as the host answers it to the caller.
func (c *Context) Run() string { return c.task.Start().Run }

// Attempt counts this run's starts: 1, or more when the run started again
// with the same id after its module instance or its process was lost
// (docs/events.md, "Durable runs"). What the run stored before is there:
// code that must not do a step twice records each step in state and
// skips those recorded.
func (c *Context) Attempt() int { return max(c.task.Start().Attempt, 1) }

// Deadline implements context.Context. A run has no deadline of its own.
func (c *Context) Deadline() (deadline time.Time, ok bool) { return c.task.Deadline() }

// Done implements context.Context: it is closed when the host cancels the
// run or the handler returns.
func (c *Context) Done() <-chan struct{} { return c.task.Done() }

// Err implements context.Context.
func (c *Context) Err() error { return c.task.Err() }

// Value implements context.Context.
func (c *Context) Value(key any) any { return c.task.Value(key) }

// Sleep waits for d, rounded up to a millisecond. The host waits, not the
// module (a Go timer would stall the module instance), and other runs
// proceed meanwhile. It returns an error only when the run is canceled.
func (c *Context) Sleep(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if err := sched.Perform(c.task, wire.EffectSleep, wire.SleepArgs{Ms: int64(ms)}, nil); err != nil {
		return fmt.Errorf("sleep %v: %w", d, err)
	}
	return nil
}

// Group returns a new, empty Group of this run.
func (c *Context) Group() *Group { return &Group{g: sched.NewGroup(c.task)} }

// Group runs goroutines as part of a run, so that their effects go to the
// host together: several fetches started in a Group's goroutines are
// performed concurrently. It is the only way to run code of a run
// concurrently.
//
// Wait in the goroutine that created the Group, not in one of its own
// goroutines. Goroutines still running when the handler returns are
// canceled: their effects fail.
type Group struct {
	g *sched.Group
}

// Go runs f in a new goroutine of the run. A panic in f is recovered: f's
// error says so, and the run fails with a 500 agent_error naming the panic.
func (g *Group) Go(f func() error) { g.g.Go(f) }

// Wait waits for every goroutine started with Go so far, and returns the
// first non-nil error one of them returned.
func (g *Group) Wait() error { return g.g.Wait() }
