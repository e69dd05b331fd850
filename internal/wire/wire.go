// Package wire holds the JSON shapes that cross the module boundary: what a
// host passes to the guest's exports and what the exports return. The guest
// (runtime/abi) and the Go host (local) share these types; the Workers host
// (worker/) speaks the same JSON, documented in docs/abi.md.
package wire

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Version is the ABI version this tree speaks. A host refuses a module whose
// manifest names another version.
const Version = 1

// Export names. Every export the host calls is prefixed damper_.
const (
	ExportAlloc    = "damper_alloc"    // (size u32) -> ptr u32
	ExportManifest = "damper_manifest" // () -> u64 (ptr<<32 | len)
	ExportStart    = "damper_start"    // (ptr u32, len u32) -> u64
	ExportResume   = "damper_resume"   // (ptr u32, len u32) -> u64
	ExportCancel   = "damper_cancel"   // (ptr u32, len u32) -> u64
)

// Manifest describes a module: the ABI it speaks and the agents it registers.
type Manifest struct {
	ABI    int          `json:"abi"`
	Agents []AgentEntry `json:"agents"`
}

// AgentEntry is one registered agent with the JSON Schemas of its payload and
// its result, and its policy (the policy.Policy JSON) when it has one: the
// services it may reach and the names, never the values, of their secrets.
type AgentEntry struct {
	Name   string          `json:"name"`
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
	Policy json.RawMessage `json:"policy,omitempty"`
}

// Task kinds.
const (
	KindRun = "run" // one HTTP-triggered run of an agent's handler
	// KindEgress decides one request a sandbox of the agent instance sent
	// out (the container kind's egress): its payload is an EgressRequest,
	// its result an EgressDecision. Run names the run whose sandbox
	// operation was in flight, or "egress" when none was.
	KindEgress = "egress"
)

// EgressRequest is the payload of an egress task: an HTTP request as a
// sandbox sent it, through the host's proxy (locally) or a Container's
// outbound handler (Workers), hop-by-hop and proxy headers removed.
type EgressRequest struct {
	Method  string   `json:"method"`
	URL     string   `json:"url"`
	Headers []Header `json:"headers,omitempty"`
	Body    []byte   `json:"body,omitempty"`
}

// EgressDecision is the result of an egress task: the agent's policy
// decided the request. When Allow, Request is exactly what the host sends
// (canonical method and URL, the decided headers with credentials as
// placeholders, the body) through its fetch path, secrets substituted and
// the response scrubbed. Otherwise the host answers the sandbox 403 with
// the decision.
type EgressDecision struct {
	Allow   bool       `json:"allow"`
	Request *FetchArgs `json:"request,omitempty"`
	Service string     `json:"service,omitempty"`
	Rule    string     `json:"rule,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	Detail  string     `json:"detail,omitempty"`
	Method  string     `json:"method,omitempty"`
	URL     string     `json:"url,omitempty"`
}

// Start is the input of damper_start.
type Start struct {
	Task     string          `json:"task"`
	Kind     string          `json:"kind"`
	Agent    string          `json:"agent"`
	Instance string          `json:"instance"`
	Run      string          `json:"run"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	// Targets are the host's target overrides, service name to
	// "scheme://host[:port]"; the guest applies those naming services of
	// the agent's policy before deciding its requests.
	Targets map[string]string `json:"targets,omitempty"`
	// Model is the host's default model, "provider/model" (DAMPER_MODEL,
	// damper run --model): the harness uses it when neither the call, the
	// session nor the agent names one.
	Model string `json:"model,omitempty"`
	// Sandbox is the sandbox kind the host asks for this run instead of
	// the agent's choice (DAMPER_SANDBOX, damper run --sandbox): empty,
	// local or container.
	Sandbox string `json:"sandbox,omitempty"`
	// Attempt counts the run's starts: 1 the first time, more when the
	// run starts again with the same id after its module instance or its
	// process was lost. A durable run continues from what it stored.
	Attempt int `json:"attempt,omitempty"`
	// Telemetry, when set, has the run export its spans to an
	// OpenTelemetry collector.
	Telemetry *Telemetry `json:"telemetry,omitempty"`
}

// Telemetry configures the OpenTelemetry export of a run's spans
// (docs/events.md): OTLP/HTTP with JSON, sent through the fetch effect, so
// the collector must be a service the agent's policy allows (policy.OTLP).
type Telemetry struct {
	// Endpoint is the collector's traces URL, such as
	// "http://127.0.0.1:4318/v1/traces".
	Endpoint string `json:"endpoint"`
	// Content adds what messages hold (tool arguments and results, the
	// model's text) to the spans; off by default.
	Content bool `json:"content,omitempty"`
	// Service is the spans' service.name ("damper" when empty).
	Service string `json:"service,omitempty"`
}

// Resume is the input of damper_resume: the results of every effect of the
// batch the previous call returned, in any order.
type Resume struct {
	Task    string   `json:"task"`
	Results []Result `json:"results"`
}

// Cancel is the input of damper_cancel.
type Cancel struct {
	Task string `json:"task"`
}

// Output is what damper_start, damper_resume and damper_cancel return.
// Either Done is false and Effects holds the next batch (never empty), or
// Done is true and exactly one of Result and Error is set.
type Output struct {
	Task    string          `json:"task"`
	Done    bool            `json:"done,omitempty"`
	Effects []Effect        `json:"effects,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// Error is a failure with a machine-readable type. Status, when set, is the
// HTTP status the host answers with. Details, when set, is a JSON value the
// host's error body carries as error.details (a result_error's reason,
// raw output and problems).
type Error struct {
	Type    string          `json:"type"`
	Message string          `json:"message"`
	Status  int             `json:"status,omitempty"`
	Details json.RawMessage `json:"details,omitempty"`
}

func (e *Error) Error() string { return e.Type + ": " + e.Message }

// Effect is one request from the guest to the host. ID is unique within the
// task. Args holds the type's arguments (FetchArgs, SQLArgs, ...).
type Effect struct {
	ID   uint64          `json:"id"`
	Type string          `json:"type"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Result answers one effect: Value on success, Error on failure.
type Result struct {
	ID    uint64          `json:"id"`
	Value json.RawMessage `json:"value,omitempty"`
	Error *Error          `json:"error,omitempty"`
}

// Effect types.
const (
	EffectFetch = "fetch"
	EffectRead  = "read"
	EffectClose = "close"
	EffectSQL   = "sql"
	EffectEmit  = "emit"
	EffectLog   = "log"
	EffectSleep = "sleep"
	// EffectBinding is a call on a Workers binding (BindingArgs).
	EffectBinding = "binding"
)

// Error types shared by both hosts and the guest.
const (
	ErrUnknownEffect  = "unknown_effect"  // the host does not perform this effect type
	ErrBadEffect      = "bad_effect"      // the effect's arguments are malformed
	ErrFetch          = "fetch_error"     // the request could not be sent or its body read
	ErrSQL            = "sql_error"       // a statement failed; the whole batch rolled back
	ErrCanceled       = "canceled"        // the task was canceled
	ErrInvalidPayload = "invalid_payload" // the payload does not decode into the agent's input (400)
	ErrUnknownAgent   = "unknown_agent"   // no agent of that name is registered (404)
	ErrAgent          = "agent_error"     // the handler returned an error (500)
	ErrBadTask        = "bad_task"        // the task input is malformed or names an unknown task
	ErrBinding        = "binding_error"   // the host has no such binding
)

// UnknownAgentMessage is the message of the error for a run of name, an
// agent the module does not have: it lists the agents it has, so that a
// typo shows what was meant. Every host and the guest answer with this
// text (the Worker's copy is in worker/index.js).
func UnknownAgentMessage(name string, agents []string) string {
	if len(agents) == 0 {
		return fmt.Sprintf("no agent named %q; this module has no agents", name)
	}
	sorted := append([]string(nil), agents...)
	sort.Strings(sorted)
	return fmt.Sprintf("no agent named %q; this module's agents: %s", name, strings.Join(sorted, ", "))
}

// Header is one header field; a list of them keeps repeated names and order.
type Header [2]string

// FetchArgs are the arguments of a fetch effect. The host sends exactly URL,
// never follows a redirect, and answers with FetchValue. With Stream the
// value carries a Handle instead of the body, read with read effects.
type FetchArgs struct {
	Method  string   `json:"method"`
	URL     string   `json:"url"`
	Headers []Header `json:"headers,omitempty"`
	Body    []byte   `json:"body,omitempty"`
	Stream  bool     `json:"stream,omitempty"`
}

// FetchValue is the value of a fetch effect.
type FetchValue struct {
	Status  int      `json:"status"`
	Headers []Header `json:"headers,omitempty"`
	Body    []byte   `json:"body,omitempty"`
	Handle  uint64   `json:"handle,omitempty"`
}

// ReadArgs read up to Max bytes (at least one unless EOF) from a streamed
// body. A handle is released by the host at EOF, by close, or at task end.
type ReadArgs struct {
	Handle uint64 `json:"handle"`
	Max    int    `json:"max"`
}

// ReadValue is one chunk of a streamed body.
type ReadValue struct {
	Body []byte `json:"body,omitempty"`
	EOF  bool   `json:"eof,omitempty"`
}

// CloseArgs release a streamed body before EOF.
type CloseArgs struct {
	Handle uint64 `json:"handle"`
}

// SQLArgs are a batch of statements run atomically against the agent
// instance's database. Statements may not open, commit or roll back
// transactions (BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE), as on a
// Durable Object. Args are JSON null, numbers, strings or booleans (stored as
// 0/1).
type SQLArgs struct {
	Statements []Statement `json:"statements"`
}

// Statement is one SQL statement with its positional arguments.
type Statement struct {
	SQL  string `json:"sql"`
	Args []any  `json:"args,omitempty"`
}

// SQLValue holds one StatementResult per statement, in order.
type SQLValue struct {
	Results []StatementResult `json:"results"`
}

// StatementResult is the rows a statement returned. Values are JSON null,
// numbers or strings; an integer beyond ±(2^53-1) is an error, since a
// Durable Object cannot return it exactly (store big integers as text).
type StatementResult struct {
	Columns []string `json:"columns"`
	Rows    [][]any  `json:"rows"`
}

// EmitArgs carry events of a run to the host, which appends them to the
// agent instance's event log (numbering them) and forwards them to the
// streams that follow it.
type EmitArgs struct {
	Events []Event `json:"events"`
}

// Event is one thing that happened in a run, as the guest emits it: its
// type (one of runtime/event's), the ids correlating it with the
// harness's session, turn and tool call, and its data. The host adds the
// rest of the envelope: seq, time, agent, instance and run.
type Event struct {
	Type    string          `json:"type"`
	Session string          `json:"session,omitempty"`
	Turn    string          `json:"turn,omitempty"`
	Call    string          `json:"call,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// LogArgs are one log record.
type LogArgs struct {
	Level   string         `json:"level"` // debug, info, warn, error
	Message string         `json:"msg"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

// BindingArgs are a call on the Workers binding Binding, carried as the
// request the guest's policy decided on, as a fetch's: the only binding is
// AI (Workers AI), whose request is a Chat Completions call of its REST
// API. The Worker calls env.AI with it when it has the binding, and
// otherwise, as the local host does, sends the request (the REST
// fallback, with the credential the policy names). The value is a
// FetchValue either way.
type BindingArgs struct {
	Binding string `json:"binding"`
	FetchArgs
}

// BindingAI is the Workers AI binding.
const BindingAI = "AI"

// SleepArgs wait for Ms milliseconds. Waiting is always an effect: a guest
// goroutine parked on a Go timer would stall the module instance.
type SleepArgs struct {
	Ms int64 `json:"ms"`
}

// Limits both hosts enforce. worker/abi.js holds the same values for the
// Workers host, generated from these (see workerabi_test.go).
const (
	// MaxPayload is the largest request body of a run (docs/http.md).
	MaxPayload = 1 << 20
	// MaxWaiting is how many runs of one agent instance may wait behind
	// the running one before new runs are refused with 429 busy.
	MaxWaiting = 256
	// MaxWholeBody caps a fetch response body returned whole; a guest
	// that needs more streams it.
	MaxWholeBody = 32 << 20
	// MaxBodiesInFlight caps the whole-body bytes one agent instance's
	// tasks hold at once (see docs/architecture.md, "Memory").
	MaxBodiesInFlight = 32 << 20
	// MaxResponseHead bounds a fetch response's head (status line and
	// header fields), on both hosts: a batch of hostile origins must not
	// make a host and its guest hold gigabytes of headers, which the
	// whole-body budget does not count.
	MaxResponseHead = 128 << 10
	// DefaultRead is the chunk a read effect that names no max returns at
	// most, and MaxRead the largest chunk any read returns.
	DefaultRead = 64 << 10
	MaxRead     = 16 << 20
	// MaxOutput caps what one export call may return; a guest that
	// returns more is treated as trapped.
	MaxOutput = 64 << 20
	// MinInputBuffer and MaxReusedBuffer size the input buffers hosts ask
	// damper_alloc for: at least MinInputBuffer, reused while inputs fit,
	// and an input over MaxReusedBuffer gets a buffer of its own size that
	// the next smaller input releases.
	MinInputBuffer  = 4 << 10
	MaxReusedBuffer = 64 << 10
	// MaxEventData caps the data of one emitted event; a larger one is a
	// bad_effect (runtime/event caps outputs well below it).
	MaxEventData = 256 << 10
)
