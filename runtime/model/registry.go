package model

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Opener makes a model of a provider: model is the model id after the
// "provider/" of the name given to Open. It is called at each Open; keep
// it cheap.
type Opener func(model string, env Env) (Model, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Opener{}
)

// Register makes open the provider called provider, for names
// "provider/model" given to Open. Provider packages register themselves
// in their init; an agent adds its own (an OpenAI-compatible service, a
// test model) the same way. Register panics on an empty name, a name
// with a "/", a nil open, or a name taken.
func Register(provider string, open Opener) {
	if provider == "" || strings.Contains(provider, "/") {
		panic(fmt.Sprintf("model: provider name %q: want a non-empty name without /", provider))
	}
	if open == nil {
		panic(fmt.Sprintf("model: provider %s: nil Opener", provider))
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[provider]; dup {
		panic(fmt.Sprintf("model: provider %s registered twice", provider))
	}
	registry[provider] = open
}

// Option configures Open.
type Option struct {
	retry *RetryPolicy
}

// WithRetry sets how the model retries transient errors (default:
// DefaultRetryPolicy).
func WithRetry(p RetryPolicy) Option { return Option{retry: &p} }

// Open returns the model called name, "provider/model" (such as
// "anthropic/claude-sonnet-4-5", "openai/gpt-4.1", "test/schema"), whose
// requests go through env (a run's *agent.Context). The provider's
// package must be imported for it to be registered.
//
// The model retries transient errors (Error.Retryable) as WithRetry says,
// by default DefaultRetryPolicy, each wait an env.Sleep.
func Open(name string, env Env, opts ...Option) (Model, error) {
	provider, id, ok := strings.Cut(name, "/")
	if !ok || provider == "" || id == "" {
		return nil, fmt.Errorf("model %q: want provider/model, such as anthropic/claude-sonnet-4-5", name)
	}
	if env == nil {
		return nil, fmt.Errorf("model %q: nil Env", name)
	}
	registryMu.RLock()
	open := registry[provider]
	registryMu.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("model %q: no provider %q (registered: %s); %s", name, provider, registered(), linkHint(provider))
	}
	m, err := open(id, env)
	if err != nil {
		return nil, fmt.Errorf("model %q: %w", name, err)
	}
	policy := DefaultRetryPolicy
	for _, o := range opts {
		if o.retry != nil {
			policy = *o.retry
		}
	}
	return &retrying{m: m, env: env, policy: policy.normalized()}, nil
}

func registered() string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	if len(registry) == 0 {
		return "none"
	}
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// linkHint says how a module gets provider: the package of one of
// damper's, or model.Register for another.
func linkHint(provider string) string {
	switch provider {
	case "anthropic", "openai":
		return fmt.Sprintf("import its package: _ \"github.com/damperdev/damper/runtime/model/%s\"", provider)
	case "test":
		return "import the test models: _ \"github.com/damperdev/damper/runtime/model/modeltest\" (for tests and trials; keep it out of a shipped module)"
	case "workers-ai":
		return "call workersai.Register(accountID) (github.com/damperdev/damper/runtime/model/workersai) in an init function"
	}
	return "register it with model.Register in an init function (openai.Compatible makes one for an OpenAI-compatible API)"
}
