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
	"strings"
	"sync"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/internal/sched"
	"github.com/damperdev/damper/runtime/internal/schema"
)

// Agent is one registered agent.
type Agent struct {
	Name string
	// Input and Output are the payload and result types, for the manifest.
	Input, Output reflect.Type
	// Policy decides the agent's outbound requests; nil denies them all.
	// Register checks it. It must not change once registered.
	Policy *policy.Policy
	// Run runs one task of the agent; the task's kind, instance and run id
	// have been checked.
	Run sched.RunFunc
	// Egress decides one egress task (wire.KindEgress) of the agent's
	// sandbox with its policy.
	Egress sched.RunFunc

	mu sync.Mutex
	// engines are Policy compiled, by the target overrides applied to it
	// (see overrideKey); "" is the policy as registered.
	engines map[string]*policy.Engine
}

// Engine returns the agent's policy compiled with the overrides in targets
// (service name to "scheme://host[:port]", from the host) that name its
// services; others are ignored, since a host's overrides serve every agent
// of the module. Each distinct set of overrides is compiled once per module
// instance, at its first use. It returns nil, nil for an agent without a
// policy.
func (a *Agent) Engine(targets map[string]string) (*policy.Engine, error) {
	if a.Policy == nil {
		return nil, nil
	}
	key := a.overrideKey(targets)
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.engines[key]; ok {
		return e, nil
	}
	p := *a.Policy
	for _, s := range a.Policy.Services {
		if t, ok := targets[s.Name]; ok {
			// SetTarget copies the services before changing one, so the
			// registered policy keeps its targets.
			if err := p.SetTarget(s.Name, t); err != nil {
				return nil, fmt.Errorf("agent %q: target override from the host: %w", a.Name, err)
			}
		}
	}
	e, err := policy.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("agent %q: invalid policy: %w", a.Name, err)
	}
	if a.engines == nil {
		a.engines = map[string]*policy.Engine{}
	}
	a.engines[key] = e
	return e, nil
}

// overrideKey names the overrides in targets that apply to a's policy, in
// the policy's service order: equal keys compile to equal engines.
func (a *Agent) overrideKey(targets map[string]string) string {
	if len(targets) == 0 {
		return ""
	}
	var b strings.Builder
	for _, s := range a.Policy.Services {
		if t, ok := targets[s.Name]; ok {
			b.WriteString(s.Name)
			b.WriteByte('=')
			b.WriteString(t)
			b.WriteByte(',')
		}
	}
	return b.String()
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
// or taken, or the policy is of another format version: each is a mistake
// in the module's code, found at its first start.
//
// The policy is not compiled here: init runs at every module instance's
// start, for every agent of the module, while a module instance serves
// one agent instance. It compiles at the agent's first request (Engine),
// and a policy that does not compile fails that request with the reason.
// damper build and the hosts compile every policy of the manifest when
// they read it, so such a module does not get past its build.
func Register(a *Agent) {
	if !ValidName(a.Name) {
		panic(fmt.Sprintf("agent name %q: want 1 to 128 of A-Z a-z 0-9 . _ -, and not . or ..", a.Name))
	}
	if a.Policy != nil && a.Policy.Version != policy.Version {
		panic(fmt.Sprintf("agent %q: invalid policy: format version %d, want %d (build policies with policy.New)", a.Name, a.Policy.Version, policy.Version))
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
			e := wire.AgentEntry{Name: a.Name, Input: schema.For(a.Input), Output: schema.For(a.Output)}
			if a.Policy != nil {
				p, err := json.Marshal(a.Policy)
				if err != nil {
					panic(fmt.Sprintf("agent %q: encode its policy: %v", a.Name, err)) // a compiled policy encodes: cannot happen
				}
				e.Policy = p
			}
			list = append(list, e)
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

// Names returns the names of the registered agents, in no order.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	names := make([]string, 0, len(agents))
	for name := range agents {
		names = append(names, name)
	}
	return names
}

// Lookup returns the agent registered as name, or nil.
func Lookup(name string) *Agent {
	mu.Lock()
	defer mu.Unlock()
	return agents[name]
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
	case start.Kind != wire.KindRun && start.Kind != wire.KindEgress:
		return nil, &wire.Error{Type: wire.ErrBadTask, Message: fmt.Sprintf("unknown task kind %q", start.Kind)}
	case !ValidName(start.Instance):
		return nil, &wire.Error{Type: wire.ErrBadTask, Message: fmt.Sprintf("instance id %q is outside the grammar", start.Instance)}
	case start.Run == "":
		return nil, &wire.Error{Type: wire.ErrBadTask, Message: "the start names no run"}
	}
	a := Lookup(start.Agent)
	if a == nil {
		return nil, &wire.Error{Type: wire.ErrUnknownAgent, Status: 404, Message: wire.UnknownAgentMessage(start.Agent, Names())}
	}
	if start.Kind == wire.KindEgress {
		if a.Egress == nil {
			return nil, &wire.Error{Type: wire.ErrBadTask, Message: fmt.Sprintf("agent %q decides no egress", a.Name)}
		}
		return a.Egress(ctx, start)
	}
	return a.Run(ctx, start)
}
