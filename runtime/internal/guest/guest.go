// Package guest is the module as its host sees it: the registered agents,
// the manifest that describes them, and the task scheduler the exports
// drive. runtime/abi exposes it to a wasm host; agenttest drives it
// in-process.
package guest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"sync"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/internal/schema"
)

// Agent is one registered agent.
type Agent struct {
	Name string
	// Input and Output are the payload and result types, for the manifest.
	Input, Output reflect.Type
	// Run runs one task of the agent; the task's kind, instance and run id
	// have been checked.
	Run sched.RunFunc
}

var (
	mu      sync.Mutex
	agents  = map[string]*Agent{}
	entries []byte // the manifest's agents, built at the first Manifest call after a Register
)

// tasks is the module instance's task table. It is built at its first use,
// not in package init, which a module instance pays at every start.
var tasks = sync.OnceValue(func() *sched.Scheduler { return sched.New(run) })

// Register adds an agent. It panics when the name is outside the grammar
// or taken: both are mistakes in the module's code, found at its first
// start.
func Register(a *Agent) {
	if !ValidName(a.Name) {
		panic(fmt.Sprintf("agent name %q: want 1 to 128 of A-Z a-z 0-9 . _ -, and not . or ..", a.Name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, ok := agents[a.Name]; ok {
		panic(fmt.Sprintf("agent %q is registered twice", a.Name))
	}
	agents[a.Name] = a
	entries = nil
}

// ValidName reports whether s follows the grammar of agent names and
// instance ids: 1 to 128 of A-Z a-z 0-9 . _ -, and neither "." nor "..".
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Manifest returns the manifest JSON with abi as its version. The schemas
// are derived at the first call, not when agents register, so a module
// instance that never answers a manifest call never pays for them.
func Manifest(abi int) []byte {
	mu.Lock()
	defer mu.Unlock()
	if entries == nil {
		list := make([]wire.AgentEntry, 0, len(agents))
		for _, a := range agents {
			list = append(list, wire.AgentEntry{Name: a.Name, Input: schema.For(a.Input), Output: schema.For(a.Output)})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
		b, err := json.Marshal(list)
		if err != nil {
			panic("encode manifest: " + err.Error()) // schemas are valid JSON: cannot happen
		}
		entries = b
	}
	return fmt.Appendf(nil, `{"abi":%d,"agents":%s}`, abi, entries)
}

// Start is damper_start (see sched.Scheduler.Start).
func Start(in []byte) []byte { return tasks().Start(in) }

// Resume is damper_resume (see sched.Scheduler.Resume).
func Resume(in []byte) []byte { return tasks().Resume(in) }

// Cancel is damper_cancel (see sched.Scheduler.Cancel).
func Cancel(in []byte) []byte { return tasks().Cancel(in) }

// run dispatches a task to its agent.
func run(ctx context.Context, start *wire.Start) (json.RawMessage, *wire.Error) {
	switch {
	case start.Kind != wire.KindRun:
		return nil, &wire.Error{Type: wire.ErrBadTask, Message: fmt.Sprintf("unknown task kind %q", start.Kind)}
	case !ValidName(start.Instance):
		return nil, &wire.Error{Type: wire.ErrBadTask, Message: fmt.Sprintf("instance id %q is outside the grammar", start.Instance)}
	case start.Run == "":
		return nil, &wire.Error{Type: wire.ErrBadTask, Message: "the start names no run"}
	}
	mu.Lock()
	a := agents[start.Agent]
	mu.Unlock()
	if a == nil {
		return nil, &wire.Error{Type: wire.ErrUnknownAgent, Status: 404, Message: fmt.Sprintf("no agent named %q", start.Agent)}
	}
	return a.Run(ctx, start)
}
