package local

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/damperdev/damper/internal/host"
	"github.com/damperdev/damper/internal/wire"
)

// Config configures a Host. It is immutable: every With method returns a
// copy, so one Config can be shared and specialised safely.
type Config struct {
	dataDir    string
	cacheDir   string
	logger     *slog.Logger
	idle       time.Duration
	runTimeout time.Duration
	token      string
	transport  http.RoundTripper
	maxQueue   int
	targets    map[string]string
	secrets    func(name string) (string, bool)
	model      string
	sandbox    string
	sandboxes  sandboxConfig // local/sandbox.go

	retention int           // events kept per agent instance
	heartbeat time.Duration // between SSE comments on an idle stream
	ringSize  int           // recent events kept in memory per live agent instance, for streams
	telemetry *wire.Telemetry
	// discardEvents numbers events without writing them (benchmarks).
	discardEvents bool

	maxInstances int    // live module instances
	memoryLimit  uint64 // bytes of linear memory per module instance
	dropAbove    uint64 // a module instance this large is dropped after its run

	// hooks for tests of the driver; nil in production.
	onBatch func(agent, id string, effects []wire.Effect)
}

// Defaults.
const (
	// DefaultIdleTimeout is how long a module instance outlives the last run
	// of its agent instance. State is in storage, so dropping it loses nothing.
	DefaultIdleTimeout = time.Minute
	// DefaultMaxInstances is how many module instances a host keeps live
	// at once; the least recently used idle one is dropped for a new one.
	DefaultMaxInstances = 64
	// DefaultMemoryLimit is the most linear memory a module instance may
	// grow to; an allocation beyond it traps that instance alone.
	DefaultMemoryLimit = 1 << 30
	// DefaultDropAbove is the linear memory past which a module instance
	// is dropped after its run (wasm memory never shrinks, so one large
	// run would otherwise keep its peak until the instance idles out).
	DefaultDropAbove = 256 << 20
	// DefaultEventRetention is how many events an agent instance's log
	// keeps (the newest).
	DefaultEventRetention = host.DefaultEventRetention
	// DefaultHeartbeat is how often an SSE stream with nothing to send
	// sends a comment, so proxies and clients know it is alive.
	DefaultHeartbeat = 15 * time.Second
)

// ringSize is how many recent events a live agent instance keeps in
// memory, so its streams follow without reading the database.
const ringSize = 4096

// NewConfig returns the default configuration: data under .damper/data, the
// compilation cache under the user's cache directory, logs discarded, a one
// minute idle timeout, no run timeout, no token, the real network, no
// target override, and secrets from the process environment.
func NewConfig() Config {
	return Config{
		dataDir:  filepath.Join(".damper", "data"),
		cacheDir: defaultCacheDir(),
		logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		idle:     DefaultIdleTimeout,
		maxQueue: wire.MaxWaiting,
	}
}

// withDefaults fills what a zero Config leaves unset, so Config{} works
// too (with the compilation cache in memory only).
func (c Config) withDefaults() Config {
	if c.dataDir == "" {
		c.dataDir = filepath.Join(".damper", "data")
	}
	if c.logger == nil {
		c.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.idle <= 0 {
		c.idle = DefaultIdleTimeout
	}
	if c.maxQueue <= 0 {
		c.maxQueue = wire.MaxWaiting
	}
	if c.maxInstances <= 0 {
		c.maxInstances = DefaultMaxInstances
	}
	if c.memoryLimit == 0 {
		c.memoryLimit = DefaultMemoryLimit
	}
	if c.dropAbove == 0 {
		c.dropAbove = DefaultDropAbove
	}
	if c.secrets == nil {
		c.secrets = os.LookupEnv
	}
	if c.retention <= 0 {
		c.retention = DefaultEventRetention
	}
	if c.heartbeat <= 0 {
		c.heartbeat = DefaultHeartbeat
	}
	if c.ringSize <= 0 {
		c.ringSize = ringSize
	}
	return c
}

func defaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "damper", "wazero")
	}
	return filepath.Join(dir, "damper", "wazero")
}

// WithDataDir sets the directory holding each agent instance's SQLite
// database, as DIR/<agent>/<id>.sqlite (names escaped so that ids differing
// only in case get different files on case-insensitive file systems).
func (c Config) WithDataDir(dir string) Config { c.dataDir = dir; return c }

// WithCacheDir sets the directory of wazero's file compilation cache. The
// empty string keeps the cache in memory only (one compile per process).
func (c Config) WithCacheDir(dir string) Config { c.cacheDir = dir; return c }

// WithLogger sets the logger for host events, the module's stdout and
// stderr, log effects, and (at debug level) emitted events.
func (c Config) WithLogger(l *slog.Logger) Config {
	if l == nil {
		l = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c.logger = l
	return c
}

// WithIdleTimeout sets how long a module instance is kept after its agent
// instance's last run. Zero or less means DefaultIdleTimeout.
func (c Config) WithIdleTimeout(d time.Duration) Config {
	if d <= 0 {
		d = DefaultIdleTimeout
	}
	c.idle = d
	return c
}

// WithRunTimeout cancels a run (damper_cancel) that has not finished after d.
// Zero, the default, means no limit beyond the caller's context.
func (c Config) WithRunTimeout(d time.Duration) Config { c.runTimeout = d; return c }

// WithToken requires "Authorization: Bearer token" on every route of
// Handler but /health. The empty string, the default, requires none.
func (c Config) WithToken(token string) Config { c.token = token; return c }

// WithTransport sets what sends the requests of fetch effects (default:
// the real network, through a clone of http.DefaultTransport that takes no
// proxy from the environment and connects only to public addresses, and to
// the origins the agents' policies and the target overrides name, whatever
// their addresses: a public name that resolves to loopback or a private
// range is refused). The host does the rest around it: it
// refuses a URL that is not canonical, fills in secret placeholders before
// calling it (the request holds their values: it must not log them), and
// scrubs secrets from what it returns. A RoundTripper never follows
// redirects: a 3xx goes back to the agent, whose policy decides the next
// hop.
func (c Config) WithTransport(t http.RoundTripper) Config { c.transport = t; return c }

// WithMaxInstances caps the module instances the host keeps live (default
// DefaultMaxInstances); for a new one beyond it, the least recently used
// idle agent instance is dropped (its state is in storage).
func (c Config) WithMaxInstances(n int) Config { c.maxInstances = n; return c }

// WithMemoryLimit caps each module instance's linear memory at bytes
// (default DefaultMemoryLimit, rounded down to 64 KiB pages); a run that
// needs more traps its own module instance, which is dropped, and fails
// with 500 module_trap. dropAbove (default DefaultDropAbove) is the size
// past which a module instance is dropped after its run.
func (c Config) WithMemoryLimit(bytes, dropAbove uint64) Config {
	c.memoryLimit, c.dropAbove = bytes, dropAbove
	return c
}

// WithTargets points services of the agents' policies elsewhere: service
// name to "scheme://host[:port]", as DAMPER_TARGETS and --target give them
// (see ParseTargets). The module stays the same: every run is told the
// overrides, and the policy sends a request for a service's declared
// origin to its override. The host logs each override once at start, and
// New fails on one that is not an origin.
func (c Config) WithTargets(targets map[string]string) Config {
	c.targets = make(map[string]string, len(targets))
	for k, v := range targets {
		c.targets[k] = v
	}
	return c
}

// WithSecrets sets where the values of secrets come from, by name (default
// os.LookupEnv). The host asks only for the names the agents' policies
// list, once, when it starts.
func (c Config) WithSecrets(lookup func(name string) (string, bool)) Config {
	c.secrets = lookup
	return c
}

// ParseTargets reads target overrides as DAMPER_TARGETS spells them:
// "name=scheme://host[:port]" pairs separated by commas, such as
// "github=http://127.0.0.1:8081,anthropic=http://127.0.0.1:8082". An
// empty spec is no override; a name given twice is an error.
func ParseTargets(spec string) (map[string]string, error) { return host.ParseTargets(spec) }

// AddTarget adds one "name=scheme://host[:port]" override to targets,
// checking it, and fails on a name targets already has (the --target
// flag of damper run and serve).
func AddTarget(targets map[string]string, pair string) error { return host.AddTarget(targets, pair) }

// WithModel sets the default model of the agents' harnesses,
// "provider/model" (DAMPER_MODEL): used when neither the call, the session
// nor the agent names one.
func (c Config) WithModel(model string) Config { c.model = model; return c }

// WithSandbox makes every run use the sandbox kind kind (empty, local or
// container) instead of the one its agent chose; "" keeps the agent's
// choice. New fails on another kind.
func (c Config) WithSandbox(kind string) Config { c.sandbox = kind; return c }

// WithEventRetention sets how many events each agent instance's log keeps
// (the newest; default DefaultEventRetention). A stream that resumes from
// before the oldest kept starts at the oldest kept.
func (c Config) WithEventRetention(n int) Config { c.retention = n; return c }

// WithHeartbeat sets how often an idle SSE stream sends a comment line
// (default DefaultHeartbeat).
func (c Config) WithHeartbeat(d time.Duration) Config { c.heartbeat = d; return c }

// WithTelemetry has every run export its spans to the OpenTelemetry
// collector whose traces URL is endpoint (OTLP/HTTP with JSON, such as
// "http://127.0.0.1:4318/v1/traces"; docs/events.md). The export is a
// request of the run like any other: the agent's policy must allow it,
// with a service named "otel" (policy.OTLP), whose target the host points
// at the endpoint's origin. content adds message content to the spans.
// "" turns the export off.
func (c Config) WithTelemetry(endpoint string, content bool) Config {
	if endpoint == "" {
		c.telemetry = nil
		return c
	}
	c.telemetry = &wire.Telemetry{Endpoint: endpoint, Content: content}
	return c
}

// TelemetryService is the name of the policy service a run's span export
// is decided by (policy.OTLP builds it).
const TelemetryService = "otel"

// telemetryTargets returns the target overrides with the collector's
// origin as the target of TelemetryService (unless one was given), and
// the telemetry the starts carry. It warns of agents whose policy has no
// such service: their spans are denied.
func (c Config) telemetryTargets(m wire.Manifest) (map[string]string, *wire.Telemetry, error) {
	if c.telemetry == nil {
		return c.targets, nil, nil
	}
	u, err := url.Parse(c.telemetry.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("OpenTelemetry endpoint %q: want an http or https URL such as http://127.0.0.1:4318/v1/traces", c.telemetry.Endpoint)
	}
	targets := make(map[string]string, len(c.targets)+1)
	for k, v := range c.targets {
		targets[k] = v
	}
	if _, ok := targets[TelemetryService]; !ok {
		targets[TelemetryService] = u.Scheme + "://" + u.Host
	}
	for _, a := range m.Agents {
		if !hasService(a.Policy, TelemetryService) {
			c.logger.Warn("OpenTelemetry export is on, but this agent's policy has no service \"otel\": its spans are denied (add policy.OTLP())", "agent", a.Name)
		}
	}
	t := *c.telemetry
	return targets, &t, nil
}

// hasService reports whether a manifest policy names a service.
func hasService(policy json.RawMessage, name string) bool {
	var p struct {
		Services []struct {
			Name string `json:"name"`
		} `json:"services"`
	}
	if json.Unmarshal(policy, &p) != nil {
		return false
	}
	for _, s := range p.Services {
		if s.Name == name {
			return true
		}
	}
	return false
}
