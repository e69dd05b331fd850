// Package model is the provider-neutral interface to language models: one
// Turn of a model (a request with the conversation and the tools offered,
// deltas streamed to a callback while it runs, the assistant's message at
// its end), the errors a caller branches on, retries, usage and cost.
//
// Providers live in packages of their own and register themselves when
// imported, as database/sql drivers do, so a module links only the
// providers it uses:
//
//	import _ "github.com/damperdev/damper/runtime/model/anthropic"
//
//	m, err := model.Open("anthropic/claude-sonnet-4-5", ctx) // ctx is the run's *agent.Context
//	resp, err := m.Turn(ctx, &model.Request{
//		System:   "You are terse.",
//		Messages: []model.Message{model.UserText("Hello")},
//	}, nil)
//
// A provider sends its requests through the policy-checked transport of
// the run its Env is (a *agent.Context) and never holds a key: the policy presets
// (policy.Anthropic, policy.OpenAI) make the host add it to each allowed
// request. Every wait between retries is Env.Sleep, a sleep the host
// performs.
package model

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Model is one model of one provider.
type Model interface {
	// Turn runs one model turn: it sends req and returns the assistant's
	// message once the model stops. While the model runs, Turn calls
	// onDelta (when not nil) with each piece of the message as it
	// arrives, in order, from the goroutine that called Turn.
	//
	// A failure is a *Error, whose Kind says what to do about it. Models
	// from Open retry the transient ones themselves (see RetryPolicy):
	// the error they return is the last one.
	Turn(ctx context.Context, req *Request, onDelta func(Delta)) (*Response, error)
}

// Env is the run a model belongs to: a run's *agent.Context. Providers send
// through its policy-checked transport (the agent's policy decides each
// request, the host sends it and adds credentials) and wait with its Sleep,
// which the host performs.
//
// Env names no method that returns a transport on purpose: an interface
// whose method has the type of Context.Transport makes the linker keep
// crypto/x509 and encoding/asn1 code reachable through *http.Response,
// about 70 KB gzip of module (docs/architecture.md, "Departures").
type Env interface {
	// Sleep waits for d; it fails only when the run is canceled.
	Sleep(d time.Duration) error
}

// Request is what a model is asked in one turn.
type Request struct {
	// System is the system prompt; empty for none.
	System string `json:"system,omitempty"`
	// Messages is the conversation so far, oldest first, starting with a
	// user message. A user message answers the tool calls of the
	// assistant message before it with one tool_result part per call.
	Messages []Message `json:"messages"`
	// Tools are the tools the model may call.
	Tools []ToolSpec `json:"tools,omitempty"`
	// ToolChoice says whether and which tools the model must call; the
	// zero value lets it decide.
	ToolChoice ToolChoice `json:"tool_choice,omitzero"`
	// MaxTokens caps the output; 0 means DefaultMaxTokens for providers
	// that require a cap (Anthropic) and the provider's own default for
	// the others.
	MaxTokens int `json:"max_tokens,omitempty"`
	// Temperature, when not nil, is the sampling temperature.
	Temperature *float64 `json:"temperature,omitempty"`
	// StopSequences end the turn when the model writes one of them
	// (StopSequence).
	StopSequences []string `json:"stop_sequences,omitempty"`
	// Cache asks the provider to cache the prompt's prefix (system
	// prompt, tools and conversation) for the next turn, where the
	// provider needs asking: Anthropic marks cache breakpoints on the
	// system prompt and the last message. OpenAI caches on its own.
	Cache bool `json:"cache,omitempty"`
	// Extra holds members the provider adds verbatim to the top level of
	// its JSON request body, replacing its own of the same name: the
	// escape hatch for what this package does not model (Anthropic's
	// "thinking", OpenAI's "reasoning_effort", ...). Keys are the
	// provider's; a request with Extra is for one provider.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// DefaultMaxTokens is the output cap sent to providers that require one
// when Request.MaxTokens is 0.
const DefaultMaxTokens = 8192

// ToolSpec is a tool offered to the model.
type ToolSpec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// InputSchema is the JSON Schema of the tool's input, an object.
	InputSchema json.RawMessage `json:"input_schema"`
}

// ToolChoiceMode is how a model chooses tools.
type ToolChoiceMode string

// Tool choice modes.
const (
	ToolAuto ToolChoiceMode = "auto" // the model decides (the zero ToolChoice)
	ToolAny  ToolChoiceMode = "any"  // the model must call a tool, any
	ToolNone ToolChoiceMode = "none" // the model must not call a tool
	ToolName ToolChoiceMode = "tool" // the model must call the tool ToolChoice.Name
)

// ToolChoice says whether and which tools the model must call.
type ToolChoice struct {
	Mode ToolChoiceMode `json:"mode,omitempty"` // "" is ToolAuto
	Name string         `json:"name,omitempty"` // with ToolName
}

// Role is who wrote a message.
type Role string

// Roles.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one message of a conversation. It is plain data, encoded as
// JSON for storage.
type Message struct {
	Role    Role   `json:"role"`
	Content []Part `json:"content"`
}

// PartType is the kind of a message part.
type PartType string

// Part types.
const (
	// PartText is text: Text.
	PartText PartType = "text"
	// PartToolUse is a tool call of the assistant: ID, Name, Input.
	PartToolUse PartType = "tool_use"
	// PartToolResult answers a tool call, in a user message: ToolUseID,
	// Text (the result), IsError.
	PartToolResult PartType = "tool_result"
	// PartThinking is the assistant's reasoning: Text and Signature.
	// Anthropic checks the signature when the part is sent back, so keep
	// the part as it came; other providers drop it from requests.
	PartThinking PartType = "thinking"
	// PartRedactedThinking is reasoning the provider encrypted: Data, to
	// send back as it came.
	PartRedactedThinking PartType = "redacted_thinking"
)

// Part is one piece of a message's content. Type says which fields are
// set.
type Part struct {
	Type PartType `json:"type"`
	// Text is the text of a text or thinking part, and the content of a
	// tool_result.
	Text string `json:"text,omitempty"`
	// ID, Name and Input are a tool_use's call id, tool name and
	// arguments. Input is always a JSON value: when the model wrote
	// arguments that are not JSON, it is a JSON string holding what it
	// wrote, which an object's schema rejects.
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// ToolUseID and IsError are a tool_result's call id and whether the
	// result is an error.
	ToolUseID string `json:"tool_use_id,omitempty"`
	IsError   bool   `json:"is_error,omitempty"`
	// Signature authenticates a thinking part; Data is a
	// redacted_thinking part's payload.
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
}

// Text returns a text part.
func Text(s string) Part { return Part{Type: PartText, Text: s} }

// ToolUse returns a tool_use part calling tool name with input (a JSON
// value; nil is {}).
func ToolUse(id, name string, input json.RawMessage) Part {
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	return Part{Type: PartToolUse, ID: id, Name: name, Input: input}
}

// ToolResult returns a tool_result part answering the call id.
func ToolResult(id, content string, isError bool) Part {
	return Part{Type: PartToolResult, ToolUseID: id, Text: content, IsError: isError}
}

// UserText returns a user message of one text part.
func UserText(s string) Message {
	return Message{Role: RoleUser, Content: []Part{Text(s)}}
}

// Text returns the message's text parts, concatenated.
func (m *Message) Text() string {
	var b strings.Builder
	for i := range m.Content {
		if m.Content[i].Type == PartText {
			b.WriteString(m.Content[i].Text)
		}
	}
	return b.String()
}

// ToolUses returns the message's tool_use parts, in order.
func (m *Message) ToolUses() []Part {
	var calls []Part
	for _, p := range m.Content {
		if p.Type == PartToolUse {
			calls = append(calls, p)
		}
	}
	return calls
}

// StopReason is why a model stopped, normalized across providers.
type StopReason string

// Stop reasons.
const (
	// StopEndTurn: the model finished its answer.
	StopEndTurn StopReason = "end_turn"
	// StopMaxTokens: the output reached MaxTokens (or the context window)
	// and was cut.
	StopMaxTokens StopReason = "max_tokens"
	// StopToolUse: the model called tools and waits for their results.
	StopToolUse StopReason = "tool_use"
	// StopPauseTurn: the provider paused a long turn; send the message
	// back as it is to let it continue.
	StopPauseTurn StopReason = "pause_turn"
	// StopRefusal: the model declined to answer.
	StopRefusal StopReason = "refusal"
	// StopSequence: the model wrote one of Request.StopSequences
	// (Response.StopSequence).
	StopSequence StopReason = "stop_sequence"
	// StopContentFilter: the provider's content filter cut the answer.
	StopContentFilter StopReason = "content_filter"
	// StopOther: a reason this package does not know; see
	// Response.RawStopReason.
	StopOther StopReason = "other"
)

// Response is the end of a turn.
type Response struct {
	// Message is the assistant's message.
	Message Message `json:"message"`
	// StopReason is why the model stopped; RawStopReason is the
	// provider's own value for it.
	StopReason    StopReason `json:"stop_reason"`
	RawStopReason string     `json:"raw_stop_reason,omitempty"`
	// StopSequence is the stop sequence the model wrote, with
	// StopSequence.
	StopSequence string `json:"stop_sequence,omitempty"`
	// Usage is what the turn's final attempt used (failed attempts of a
	// retried turn are not counted: providers report no usage for them).
	Usage Usage `json:"usage"`
	// Provider is the provider's registered name; Model is the model id
	// the provider answered with (often a dated snapshot of the one
	// asked for); ID is the provider's id of the response.
	Provider string `json:"provider"`
	Model    string `json:"model"`
	ID       string `json:"id,omitempty"`
}

// Cost returns what the turn cost in US dollars by the price table
// (PriceOf), and false when the table has no price for the model.
func (r *Response) Cost() (float64, bool) {
	p, ok := PriceOf(r.Provider + "/" + r.Model)
	if !ok {
		return 0, false
	}
	return p.Cost(r.Usage), true
}

// DeltaType is the kind of a Delta.
type DeltaType string

// Delta types.
const (
	// DeltaText: Text continues the text part at Index.
	DeltaText DeltaType = "text"
	// DeltaThinking: Text continues the thinking part at Index.
	DeltaThinking DeltaType = "thinking"
	// DeltaToolUse: a tool call starts at Index: ID and Name.
	DeltaToolUse DeltaType = "tool_use"
	// DeltaToolInput: Text is the next fragment of the input JSON of the
	// tool call at Index.
	DeltaToolInput DeltaType = "tool_input"
	// DeltaRetry: the attempt failed with Err and is retried after Wait,
	// as attempt number Attempt (the first retry is 2). The deltas since
	// the attempt began are void: the message starts again.
	DeltaRetry DeltaType = "retry"
)

// Delta is a piece of a turn in progress: what streaming shows a user, and
// what the harness turns into events. The final message is in the
// Response; deltas need not be kept.
type Delta struct {
	Type  DeltaType
	Index int // the part of the message being built
	Text  string
	// ID and Name are a DeltaToolUse's call id and tool name.
	ID, Name string
	// Attempt, Wait and Err describe a DeltaRetry.
	Attempt int
	Wait    time.Duration
	Err     error
}
