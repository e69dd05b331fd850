package event

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/damperdev/damper/internal/wirejson"
)

// Payload is the data of one event type: one of the structs of this
// package. The set is closed; the unexported method keeps it so.
type Payload interface {
	// Type is the event type the payload is the data of.
	Type() Type
	// appendJSON appends the payload's JSON, the same as json.Marshal
	// writes (by hand: encoding/json costs microseconds a call in wasm).
	appendJSON(b []byte) []byte
}

// MaxOutput caps what an event carries of a tool's or a command's output,
// and of a tool call's arguments: beyond it Emit cuts the text (at a
// character boundary) and marks it truncated.
const MaxOutput = 8 << 10

// Usage counts a model's tokens, split as runtime/model splits them:
// input tokens neither read from nor written to the prompt cache, output
// tokens, cache reads and cache writes.
type Usage struct {
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	CacheReadTokens  int64 `json:"cache_read_tokens,omitempty"`
	CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
}

// Add adds v to u.
func (u *Usage) Add(v Usage) {
	u.InputTokens += v.InputTokens
	u.OutputTokens += v.OutputTokens
	u.CacheReadTokens += v.CacheReadTokens
	u.CacheWriteTokens += v.CacheWriteTokens
}

func (u *Usage) appendJSON(b []byte) []byte {
	b = append(b, `{"input_tokens":`...)
	b = strconv.AppendInt(b, u.InputTokens, 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, u.OutputTokens, 10)
	b = appendOptInt(b, `,"cache_read_tokens":`, u.CacheReadTokens)
	b = appendOptInt(b, `,"cache_write_tokens":`, u.CacheWriteTokens)
	return append(b, '}')
}

// Why a run was canceled (RunCancel.Reason).
const (
	CancelRequested       = "requested"        // DELETE of the run
	CancelInstanceDeleted = "instance_deleted" // DELETE of its agent instance
	CancelTimeout         = "timeout"          // the run timeout passed
	CancelCallerGone      = "caller_gone"      // the client of a synchronous run disconnected
	CancelInterrupted     = "interrupted"      // damper run got SIGINT
)

// RunStart is the data of run.start. A run interrupted by the loss of its
// module instance or its process starts again with the same run id and a
// greater Attempt.
type RunStart struct {
	Attempt int    `json:"attempt"`
	Model   string `json:"model,omitempty"`   // the host's model choice (wire.Start.Model)
	Sandbox string `json:"sandbox,omitempty"` // the host's sandbox choice (wire.Start.Sandbox)
}

// RunFinish is the data of run.finish: the result, and what the run's
// model turns used and cost in all (summed from its turn.finish events).
type RunFinish struct {
	Result     json.RawMessage `json:"result"`
	Usage      Usage           `json:"usage"`
	Cost       float64         `json:"cost"`
	DurationMs int64           `json:"duration_ms"`
}

// RunError is the data of run.error: the error as the HTTP API answers it.
type RunError struct {
	ErrorType  string  `json:"type"` // agent_error, module_trap, invalid_payload, ...
	Message    string  `json:"message"`
	Status     int     `json:"status,omitempty"`
	Usage      Usage   `json:"usage"`
	Cost       float64 `json:"cost"`
	DurationMs int64   `json:"duration_ms"`
}

// RunCancel is the data of run.cancel.
type RunCancel struct {
	Reason     string  `json:"reason"` // Cancel...
	Message    string  `json:"message"`
	Usage      Usage   `json:"usage"`
	Cost       float64 `json:"cost"`
	DurationMs int64   `json:"duration_ms"`
}

// TurnStart is the data of turn.start: a call to a model begins. The
// envelope's Turn names it, for its deltas and its turn.finish.
type TurnStart struct {
	Provider string `json:"provider,omitempty"` // "anthropic", "openai", ...
	Model    string `json:"model"`
}

// TurnFinish is the data of turn.finish. ErrorType and Error are set when
// the call failed.
type TurnFinish struct {
	Provider      string  `json:"provider,omitempty"`
	Model         string  `json:"model"`
	ResponseModel string  `json:"response_model,omitempty"` // the model the provider says answered
	StopReason    string  `json:"stop_reason,omitempty"`    // end_turn, tool_use, max_tokens, ...
	Usage         Usage   `json:"usage"`
	Cost          float64 `json:"cost"` // US dollars
	DurationMs    int64   `json:"duration_ms"`
	ErrorType     string  `json:"error_type,omitempty"`
	Error         string  `json:"error,omitempty"`
}

// TextDelta is the data of text.delta: the next piece of the turn's text.
type TextDelta struct {
	Text string `json:"text"`
}

// ThinkingDelta is the data of thinking.delta.
type ThinkingDelta struct {
	Text string `json:"text"`
}

// ModelRetry is the data of model.retry: the turn's model call failed
// with a transient error (rate limited, overloaded, cut off) and is tried
// again after WaitMs. What the failed attempt streamed is void: a reader
// of text.delta starts the turn's message again.
type ModelRetry struct {
	Attempt int    `json:"attempt"` // the attempt that comes next: 2, 3, ...
	WaitMs  int64  `json:"wait_ms"`
	Error   string `json:"error,omitempty"`
}

// ToolStart is the data of tool.start; the envelope's Call is the model's
// tool call id. Args over MaxOutput bytes are sent as a JSON string of
// their first MaxOutput bytes, with Truncated set.
type ToolStart struct {
	Tool      string          `json:"tool"`
	Args      json.RawMessage `json:"args,omitempty"`
	Truncated bool            `json:"truncated,omitempty"`
}

// ToolFinish is the data of tool.finish: what the tool returned, capped at
// MaxOutput bytes.
type ToolFinish struct {
	Tool       string `json:"tool"`
	DurationMs int64  `json:"duration_ms"`
	Output     string `json:"output,omitempty"`
	Truncated  bool   `json:"truncated,omitempty"`
}

// ToolError is the data of tool.error. Interrupted says the run was
// interrupted while the tool ran (and the tool was not run again).
type ToolError struct {
	Tool        string `json:"tool"`
	DurationMs  int64  `json:"duration_ms"`
	Message     string `json:"message"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// ShellExec is the data of shell.exec: a command starts in the sandbox.
type ShellExec struct {
	Command string `json:"command"`
	Cwd     string `json:"cwd,omitempty"`
	Sandbox string `json:"sandbox,omitempty"` // its kind: empty, local, container
}

// ShellExit is the data of shell.exit: the command's exit code and its
// output (stdout and stderr as the sandbox merged them), capped at
// MaxOutput bytes.
type ShellExit struct {
	ExitCode   int    `json:"exit_code"`
	DurationMs int64  `json:"duration_ms"`
	Output     string `json:"output,omitempty"`
	Truncated  bool   `json:"truncated,omitempty"`
	TimedOut   bool   `json:"timed_out,omitempty"`
}

// Decision is a decision of the policy engine on one request: the
// service and rule that decided, the reason (policy.Reason), the method
// and the canonical URL. It never holds a secret: the module has none.
type Decision struct {
	Service string `json:"service"`
	Rule    string `json:"rule"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail,omitempty"`
	Method  string `json:"method"`
	URL     string `json:"url"`
}

func (d *Decision) appendFields(b []byte) []byte {
	b = append(b, `"service":`...)
	b = wirejson.AppendString(b, d.Service)
	b = append(b, `,"rule":`...)
	b = wirejson.AppendString(b, d.Rule)
	b = append(b, `,"reason":`...)
	b = wirejson.AppendString(b, d.Reason)
	b = appendOptString(b, `,"detail":`, d.Detail)
	b = append(b, `,"method":`...)
	b = wirejson.AppendString(b, d.Method)
	b = append(b, `,"url":`...)
	return wirejson.AppendString(b, d.URL)
}

// PolicyAllow is the data of policy.allow: a request of the agent's code
// (or a redirect hop) was allowed and sent.
type PolicyAllow struct{ Decision }

// PolicyDeny is the data of policy.deny: a request was denied and not sent.
type PolicyDeny struct{ Decision }

// PolicyReport is the data of policy.report: a policy in report mode sent
// a request that enforcement would have denied, for the reason given.
type PolicyReport struct{ Decision }

// EgressAllow is the data of egress.allow: a request the sandbox itself
// made (a command's own HTTP, through the host's egress proxy) was
// allowed.
type EgressAllow struct{ Decision }

// EgressDeny is the data of egress.deny: the sandbox's own request was
// denied, and answered 403.
type EgressDeny struct{ Decision }

// ResultRetry is the data of result.retry: the model's result did not
// validate against the result's schema, and it is asked again.
type ResultRetry struct {
	Attempt  int      `json:"attempt"`
	Problems []string `json:"problems"`
}

// CompactionStart is the data of compaction.start: Tokens is the
// conversation's size that triggered it.
type CompactionStart struct {
	Tokens int64 `json:"tokens"`
}

// CompactionFinish is the data of compaction.finish.
type CompactionFinish struct {
	TokensBefore int64 `json:"tokens_before"`
	TokensAfter  int64 `json:"tokens_after"`
	DurationMs   int64 `json:"duration_ms"`
}

// SubagentStart is the data of subagent.start: the envelope's Session is
// the parent's and Call the tool call that started it; Session here is
// the subagent's own, which its events carry.
type SubagentStart struct {
	Name    string `json:"name"`
	Session string `json:"session"`
	Depth   int    `json:"depth"`
}

// SubagentFinish is the data of subagent.finish; Error is set when the
// subagent failed.
type SubagentFinish struct {
	Name       string `json:"name"`
	Session    string `json:"session"`
	DurationMs int64  `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

// Log is the data of log: a record of Context.Logger, with its attributes
// as a JSON object.
type Log struct {
	Level   string          `json:"level"` // debug, info, warn, error
	Message string          `json:"message"`
	Attrs   json.RawMessage `json:"attrs,omitempty"`
}

// Type implements Payload.
func (RunStart) Type() Type         { return TypeRunStart }
func (RunFinish) Type() Type        { return TypeRunFinish }
func (RunError) Type() Type         { return TypeRunError }
func (RunCancel) Type() Type        { return TypeRunCancel }
func (TurnStart) Type() Type        { return TypeTurnStart }
func (TurnFinish) Type() Type       { return TypeTurnFinish }
func (TextDelta) Type() Type        { return TypeTextDelta }
func (ThinkingDelta) Type() Type    { return TypeThinkingDelta }
func (ModelRetry) Type() Type       { return TypeModelRetry }
func (ToolStart) Type() Type        { return TypeToolStart }
func (ToolFinish) Type() Type       { return TypeToolFinish }
func (ToolError) Type() Type        { return TypeToolError }
func (ShellExec) Type() Type        { return TypeShellExec }
func (ShellExit) Type() Type        { return TypeShellExit }
func (PolicyAllow) Type() Type      { return TypePolicyAllow }
func (PolicyDeny) Type() Type       { return TypePolicyDeny }
func (PolicyReport) Type() Type     { return TypePolicyReport }
func (EgressAllow) Type() Type      { return TypeEgressAllow }
func (EgressDeny) Type() Type       { return TypeEgressDeny }
func (ResultRetry) Type() Type      { return TypeResultRetry }
func (CompactionStart) Type() Type  { return TypeCompactionStart }
func (CompactionFinish) Type() Type { return TypeCompactionFinish }
func (SubagentStart) Type() Type    { return TypeSubagentStart }
func (SubagentFinish) Type() Type   { return TypeSubagentFinish }
func (Log) Type() Type              { return TypeLog }

func (p RunStart) appendJSON(b []byte) []byte {
	b = append(b, `{"attempt":`...)
	b = strconv.AppendInt(b, int64(p.Attempt), 10)
	b = appendOptString(b, `,"model":`, p.Model)
	b = appendOptString(b, `,"sandbox":`, p.Sandbox)
	return append(b, '}')
}

func (p RunFinish) appendJSON(b []byte) []byte {
	b = append(b, `{"result":`...)
	b = appendRaw(b, p.Result)
	return appendSpend(b, &p.Usage, p.Cost, p.DurationMs)
}

// appendSpend closes a run's terminal payload: usage, cost and duration.
func appendSpend(b []byte, u *Usage, cost float64, ms int64) []byte {
	b = append(b, `,"usage":`...)
	b = u.appendJSON(b)
	b = append(b, `,"cost":`...)
	b = appendFloat(b, cost)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, ms, 10)
	return append(b, '}')
}

func (p RunError) appendJSON(b []byte) []byte {
	b = append(b, `{"type":`...)
	b = wirejson.AppendString(b, p.ErrorType)
	b = append(b, `,"message":`...)
	b = wirejson.AppendString(b, p.Message)
	b = appendOptInt(b, `,"status":`, int64(p.Status))
	return appendSpend(b, &p.Usage, p.Cost, p.DurationMs)
}

func (p RunCancel) appendJSON(b []byte) []byte {
	b = append(b, `{"reason":`...)
	b = wirejson.AppendString(b, p.Reason)
	b = append(b, `,"message":`...)
	b = wirejson.AppendString(b, p.Message)
	return appendSpend(b, &p.Usage, p.Cost, p.DurationMs)
}

func (p TurnStart) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if p.Provider != "" {
		b = append(b, `"provider":`...)
		b = wirejson.AppendString(b, p.Provider)
		b = append(b, ',')
	}
	b = append(b, `"model":`...)
	b = wirejson.AppendString(b, p.Model)
	return append(b, '}')
}

func (p TurnFinish) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if p.Provider != "" {
		b = append(b, `"provider":`...)
		b = wirejson.AppendString(b, p.Provider)
		b = append(b, ',')
	}
	b = append(b, `"model":`...)
	b = wirejson.AppendString(b, p.Model)
	b = appendOptString(b, `,"response_model":`, p.ResponseModel)
	b = appendOptString(b, `,"stop_reason":`, p.StopReason)
	b = append(b, `,"usage":`...)
	b = p.Usage.appendJSON(b)
	b = append(b, `,"cost":`...)
	b = appendFloat(b, p.Cost)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, p.DurationMs, 10)
	b = appendOptString(b, `,"error_type":`, p.ErrorType)
	b = appendOptString(b, `,"error":`, p.Error)
	return append(b, '}')
}

func (p TextDelta) appendJSON(b []byte) []byte     { return appendText(b, p.Text) }
func (p ThinkingDelta) appendJSON(b []byte) []byte { return appendText(b, p.Text) }

// appendText writes a delta's data, {"text":…}.
func appendText(b []byte, text string) []byte {
	b = append(b, `{"text":`...)
	b = wirejson.AppendString(b, text)
	return append(b, '}')
}

func (p ModelRetry) appendJSON(b []byte) []byte {
	b = append(b, `{"attempt":`...)
	b = strconv.AppendInt(b, int64(p.Attempt), 10)
	b = append(b, `,"wait_ms":`...)
	b = strconv.AppendInt(b, p.WaitMs, 10)
	b = appendOptString(b, `,"error":`, p.Error)
	return append(b, '}')
}

func (p ToolStart) appendJSON(b []byte) []byte {
	b = append(b, `{"tool":`...)
	// The tool's name is the model's: a call of an unknown tool may name
	// one of any length, and an event over wire.MaxEventData is refused,
	// so the call would be missing from the log.
	tool, cutName := capString(p.Tool)
	b = wirejson.AppendString(b, tool)
	truncated := p.Truncated || cutName
	if len(p.Args) > 0 {
		b = append(b, `,"args":`...)
		if len(p.Args) > MaxOutput || !json.Valid(p.Args) {
			s, cut := capString(string(p.Args))
			b = wirejson.AppendString(b, s)
			truncated = truncated || cut
		} else {
			b = append(b, p.Args...)
		}
	}
	if truncated {
		b = append(b, `,"truncated":true`...)
	}
	return append(b, '}')
}

func (p ToolFinish) appendJSON(b []byte) []byte {
	tool, _ := capString(p.Tool)
	b = append(b, `{"tool":`...)
	b = wirejson.AppendString(b, tool)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, p.DurationMs, 10)
	out, cut := capString(p.Output)
	b = appendOptString(b, `,"output":`, out)
	if p.Truncated || cut {
		b = append(b, `,"truncated":true`...)
	}
	return append(b, '}')
}

func (p ToolError) appendJSON(b []byte) []byte {
	// Both are the model's to make long (an unknown tool's name, which
	// the message repeats; a tool's error quoting its output): capped, or
	// the host refuses the event (over wire.MaxEventData) and the log
	// misses the call's end.
	tool, _ := capString(p.Tool)
	msg, _ := capString(p.Message)
	b = append(b, `{"tool":`...)
	b = wirejson.AppendString(b, tool)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, p.DurationMs, 10)
	b = append(b, `,"message":`...)
	b = wirejson.AppendString(b, msg)
	if p.Interrupted {
		b = append(b, `,"interrupted":true`...)
	}
	return append(b, '}')
}

func (p ShellExec) appendJSON(b []byte) []byte {
	b = append(b, `{"command":`...)
	b = wirejson.AppendString(b, p.Command)
	b = appendOptString(b, `,"cwd":`, p.Cwd)
	b = appendOptString(b, `,"sandbox":`, p.Sandbox)
	return append(b, '}')
}

func (p ShellExit) appendJSON(b []byte) []byte {
	b = append(b, `{"exit_code":`...)
	b = strconv.AppendInt(b, int64(p.ExitCode), 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, p.DurationMs, 10)
	out, cut := capString(p.Output)
	b = appendOptString(b, `,"output":`, out)
	if p.Truncated || cut {
		b = append(b, `,"truncated":true`...)
	}
	if p.TimedOut {
		b = append(b, `,"timed_out":true`...)
	}
	return append(b, '}')
}

func (p PolicyAllow) appendJSON(b []byte) []byte  { return append(p.appendFields(append(b, '{')), '}') }
func (p PolicyDeny) appendJSON(b []byte) []byte   { return append(p.appendFields(append(b, '{')), '}') }
func (p PolicyReport) appendJSON(b []byte) []byte { return append(p.appendFields(append(b, '{')), '}') }

func (p EgressAllow) appendJSON(b []byte) []byte { return append(p.appendFields(append(b, '{')), '}') }
func (p EgressDeny) appendJSON(b []byte) []byte  { return append(p.appendFields(append(b, '{')), '}') }

func (p ResultRetry) appendJSON(b []byte) []byte {
	b = append(b, `{"attempt":`...)
	b = strconv.AppendInt(b, int64(p.Attempt), 10)
	b = append(b, `,"problems":`...)
	if p.Problems == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range p.Problems {
			if i > 0 {
				b = append(b, ',')
			}
			b = wirejson.AppendString(b, s)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (p CompactionStart) appendJSON(b []byte) []byte {
	b = append(b, `{"tokens":`...)
	b = strconv.AppendInt(b, p.Tokens, 10)
	return append(b, '}')
}

func (p CompactionFinish) appendJSON(b []byte) []byte {
	b = append(b, `{"tokens_before":`...)
	b = strconv.AppendInt(b, p.TokensBefore, 10)
	b = append(b, `,"tokens_after":`...)
	b = strconv.AppendInt(b, p.TokensAfter, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, p.DurationMs, 10)
	return append(b, '}')
}

func (p SubagentStart) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = wirejson.AppendString(b, p.Name)
	b = append(b, `,"session":`...)
	b = wirejson.AppendString(b, p.Session)
	b = append(b, `,"depth":`...)
	b = strconv.AppendInt(b, int64(p.Depth), 10)
	return append(b, '}')
}

func (p SubagentFinish) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = wirejson.AppendString(b, p.Name)
	b = append(b, `,"session":`...)
	b = wirejson.AppendString(b, p.Session)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, p.DurationMs, 10)
	b = appendOptString(b, `,"error":`, p.Error)
	return append(b, '}')
}

func (p Log) appendJSON(b []byte) []byte {
	b = append(b, `{"level":`...)
	b = wirejson.AppendString(b, p.Level)
	b = append(b, `,"message":`...)
	b = wirejson.AppendString(b, p.Message)
	if len(p.Attrs) > 0 {
		b = append(b, `,"attrs":`...)
		b = appendRaw(b, p.Attrs)
	}
	return append(b, '}')
}

func appendOptInt(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	b = append(b, key...)
	return strconv.AppendInt(b, n, 10)
}

// appendRaw appends JSON the caller gave: as it is when valid (null when
// empty), else as a JSON string of its text, so that one bad value never
// spoils the whole emit.
func appendRaw(b []byte, raw json.RawMessage) []byte {
	switch {
	case len(raw) == 0:
		return append(b, "null"...)
	case json.Valid(raw):
		return append(b, raw...)
	default:
		return wirejson.AppendString(b, string(raw))
	}
}

// appendFloat writes f as encoding/json does; a NaN or an infinity, which
// JSON cannot hold, as 0.
func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 as 1e-7, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// capString cuts s to at most MaxOutput bytes, at a character boundary.
func capString(s string) (string, bool) {
	if len(s) <= MaxOutput {
		return s, false
	}
	i := MaxOutput
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i], true
}
