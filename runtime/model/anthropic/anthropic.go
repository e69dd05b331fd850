// Package anthropic is the provider "anthropic": Claude models through the
// Messages API, streamed. Import it for its side effect:
//
//	import _ "github.com/damperdev/damper/runtime/model/anthropic"
//
//	m, err := model.Open("anthropic/claude-sonnet-4-5", ctx)
//
// Requests go to https://api.anthropic.com/v1/messages with no key: the
// agent's policy needs the service policy.Anthropic(), with which the host
// adds the x-api-key header from the secret ANTHROPIC_API_KEY. To reach
// another server (a fake in tests, a gateway), point the service
// elsewhere with DAMPER_TARGETS=anthropic=https://… rather than changing
// the client.
//
// Content blocks other than text, tool_use, thinking and redacted_thinking
// (server tools' blocks, citations) are left out of the message.
package anthropic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/model/internal/provider"
	"github.com/damperdev/damper/runtime/model/internal/sse"
)

// Name is the provider's registered name.
const Name = "anthropic"

// Origin is the Messages API's origin, the one policy.Anthropic declares.
const Origin = "https://api.anthropic.com"

// Version is the anthropic-version header the client sends.
const Version = "2023-06-01"

func init() {
	model.Register(Name, func(id string, env model.Env) (model.Model, error) {
		return &client{id: id, env: env}, nil
	})
}

type client struct {
	id  string
	env model.Env
}

func (c *client) Turn(ctx context.Context, req *model.Request, onDelta func(model.Delta)) (*model.Response, error) {
	body, err := encodeRequest(c.id, req)
	if err != nil {
		return nil, &model.Error{Kind: model.KindInvalidRequest, Provider: Name, Message: "encode the request", Err: err}
	}
	resp, merr := provider.Post(ctx, c.env, Name, Origin+"/v1/messages", map[string]string{"anthropic-version": Version}, body)
	if merr != nil {
		return nil, merr
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return nil, notAStream(resp)
	}
	defer resp.Body.Close()
	s := stream{onDelta: onDelta, requestID: resp.Header.Get("Request-Id"), blocks: map[int]*block{}}
	return s.read(ctx, sse.NewReader(resp.Body))
}

// The request body.

type request struct {
	Model         string      `json:"model"`
	MaxTokens     int         `json:"max_tokens"`
	System        any         `json:"system,omitempty"`
	Messages      []message   `json:"messages"`
	Tools         []tool      `json:"tools,omitempty"`
	ToolChoice    *toolChoice `json:"tool_choice,omitempty"`
	Temperature   *float64    `json:"temperature,omitempty"`
	StopSequences []string    `json:"stop_sequences,omitempty"`
	Stream        bool        `json:"stream"`
}

type message struct {
	Role    string `json:"role"`
	Content []any  `json:"content"`
}

type cacheControl struct {
	Type string `json:"type"`
}

var ephemeral = &cacheControl{Type: "ephemeral"}

type textBlock struct {
	Type         string        `json:"type"`
	Text         string        `json:"text"`
	CacheControl *cacheControl `json:"cache_control,omitempty"`
}

type toolUseBlock struct {
	Type         string          `json:"type"`
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Input        json.RawMessage `json:"input"`
	CacheControl *cacheControl   `json:"cache_control,omitempty"`
}

type toolResultBlock struct {
	Type         string        `json:"type"`
	ToolUseID    string        `json:"tool_use_id"`
	Content      string        `json:"content,omitempty"`
	IsError      bool          `json:"is_error,omitempty"`
	CacheControl *cacheControl `json:"cache_control,omitempty"`
}

type thinkingBlock struct {
	Type      string `json:"type"`
	Thinking  string `json:"thinking"`
	Signature string `json:"signature"`
}

type redactedThinkingBlock struct {
	Type string `json:"type"`
	Data string `json:"data"`
}

type tool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl *cacheControl   `json:"cache_control,omitempty"`
}

type toolChoice struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
}

func encodeRequest(id string, req *model.Request) ([]byte, error) {
	r := request{Model: id, MaxTokens: req.MaxTokens, Temperature: req.Temperature, StopSequences: req.StopSequences, Stream: true}
	if r.MaxTokens <= 0 {
		r.MaxTokens = model.DefaultMaxTokens
	}
	if req.System != "" {
		if req.Cache {
			r.System = []textBlock{{Type: "text", Text: req.System, CacheControl: ephemeral}}
		} else {
			r.System = req.System
		}
	}
	for _, m := range req.Messages {
		content := make([]any, 0, len(m.Content))
		for _, p := range m.Content {
			if b := encodePart(p); b != nil {
				content = append(content, b)
			}
		}
		if len(content) == 0 {
			return nil, fmt.Errorf("a %s message with no content Anthropic accepts", m.Role)
		}
		r.Messages = append(r.Messages, message{Role: string(m.Role), Content: content})
	}
	if req.Cache && len(r.Messages) > 0 {
		last := r.Messages[len(r.Messages)-1].Content
		switch b := last[len(last)-1].(type) {
		case *textBlock:
			b.CacheControl = ephemeral
		case *toolUseBlock:
			b.CacheControl = ephemeral
		case *toolResultBlock:
			b.CacheControl = ephemeral
		}
	}
	for _, t := range req.Tools {
		schema := t.InputSchema
		if len(schema) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		r.Tools = append(r.Tools, tool{Name: t.Name, Description: t.Description, InputSchema: schema})
	}
	if req.Cache && len(r.Tools) > 0 {
		r.Tools[len(r.Tools)-1].CacheControl = ephemeral
	}
	switch req.ToolChoice.Mode {
	case "", model.ToolAuto:
	case model.ToolAny:
		r.ToolChoice = &toolChoice{Type: "any"}
	case model.ToolNone:
		r.ToolChoice = &toolChoice{Type: "none"}
	case model.ToolName:
		r.ToolChoice = &toolChoice{Type: "tool", Name: req.ToolChoice.Name}
	default:
		return nil, fmt.Errorf("unknown tool choice %q", req.ToolChoice.Mode)
	}
	b, err := json.Marshal(r)
	if err != nil || len(req.Extra) == 0 {
		return b, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	for k, v := range req.Extra {
		top[k] = v
	}
	return json.Marshal(top)
}

// encodePart is p as a content block, nil for a part Anthropic would
// refuse and that carries nothing (empty text).
func encodePart(p model.Part) any {
	switch p.Type {
	case model.PartText:
		if p.Text == "" {
			return nil
		}
		return &textBlock{Type: "text", Text: p.Text}
	case model.PartToolUse:
		input := bytes.TrimSpace(p.Input)
		if len(input) == 0 || input[0] != '{' {
			// Anthropic takes only an object; arguments the model wrote
			// wrong were answered by an error result already.
			input = []byte("{}")
		}
		return &toolUseBlock{Type: "tool_use", ID: p.ID, Name: p.Name, Input: input}
	case model.PartToolResult:
		return &toolResultBlock{Type: "tool_result", ToolUseID: p.ToolUseID, Content: p.Text, IsError: p.IsError}
	case model.PartThinking:
		return &thinkingBlock{Type: "thinking", Thinking: p.Text, Signature: p.Signature}
	case model.PartRedactedThinking:
		return &redactedThinkingBlock{Type: "redacted_thinking", Data: p.Data}
	}
	return nil
}

// The stream.

type usage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

type apiError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type event struct {
	Type    string `json:"type"`
	Message *struct {
		ID    string `json:"id"`
		Model string `json:"model"`
		Usage *usage `json:"usage"`
	} `json:"message"`
	Index        int `json:"index"`
	ContentBlock *struct {
		Type      string          `json:"type"`
		Text      string          `json:"text"`
		ID        string          `json:"id"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
		Thinking  string          `json:"thinking"`
		Signature string          `json:"signature"`
		Data      string          `json:"data"`
	} `json:"content_block"`
	Delta *struct {
		Type         string  `json:"type"`
		Text         string  `json:"text"`
		PartialJSON  string  `json:"partial_json"`
		Thinking     string  `json:"thinking"`
		Signature    string  `json:"signature"`
		StopReason   string  `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	} `json:"delta"`
	Usage     *usage    `json:"usage"`
	Error     *apiError `json:"error"`
	RequestID string    `json:"request_id"`
}

// block is a content block being streamed.
type block struct {
	index int // in the message
	part  model.Part
	text  strings.Builder // text, thinking, or the tool input's JSON
}

type stream struct {
	onDelta   func(model.Delta)
	requestID string
	resp      model.Response
	blocks    map[int]*block // by the stream's index
	parts     int
	started   bool
}

func (s *stream) delta(d model.Delta) {
	if s.onDelta != nil {
		s.onDelta(d)
	}
}

func (s *stream) bad(format string, args ...any) *model.Error {
	return &model.Error{Kind: model.KindBadResponse, Provider: Name, Status: http.StatusOK, Message: fmt.Sprintf(format, args...), RequestID: s.requestID}
}

func (s *stream) read(ctx context.Context, r *sse.Reader) (*model.Response, error) {
	s.resp.Provider = Name
	for {
		e, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, s.bad("the stream ended before message_stop")
			}
			if errors.Is(err, sse.ErrTooLong) {
				return nil, s.bad("%v", err)
			}
			merr := provider.SendError(ctx, Name, fmt.Errorf("read the stream: %w", err))
			merr.RequestID = s.requestID
			return nil, merr
		}
		var ev event
		if !fastDelta(e.Data, &ev) {
			ev = event{}
			if err := json.Unmarshal(e.Data, &ev); err != nil {
				return nil, s.bad("a %s event whose data is not JSON: %s", eventName(e.Type), provider.Snippet(e.Data))
			}
		}
		if ev.Type == "" {
			ev.Type = e.Type
		}
		done, merr := s.apply(&ev)
		if merr != nil {
			return nil, merr
		}
		if done {
			return s.finish()
		}
	}
}

func eventName(t string) string {
	if t == "" {
		return "message"
	}
	return t
}

// apply takes one event into the response; done at message_stop.
func (s *stream) apply(ev *event) (done bool, err *model.Error) {
	switch ev.Type {
	case "ping":
	case "message_start":
		if ev.Message == nil {
			return false, s.bad("message_start without a message")
		}
		s.started = true
		s.resp.ID, s.resp.Model = ev.Message.ID, ev.Message.Model
		if u := ev.Message.Usage; u != nil {
			s.usage(u)
		}
	case "content_block_start":
		cb := ev.ContentBlock
		if cb == nil {
			return false, s.bad("content_block_start without a content_block")
		}
		if _, dup := s.blocks[ev.Index]; dup {
			return false, s.bad("content block %d started twice", ev.Index)
		}
		b := &block{index: s.parts}
		switch cb.Type {
		case "text":
			b.part = model.Part{Type: model.PartText}
			b.text.WriteString(cb.Text)
		case "tool_use":
			b.part = model.Part{Type: model.PartToolUse, ID: cb.ID, Name: cb.Name}
			s.delta(model.Delta{Type: model.DeltaToolUse, Index: b.index, ID: cb.ID, Name: cb.Name})
			if in := bytes.TrimSpace(cb.Input); len(in) > 0 && !bytes.Equal(in, []byte("{}")) {
				b.text.Write(in) // a start that carries its input whole
			}
		case "thinking":
			b.part = model.Part{Type: model.PartThinking, Signature: cb.Signature}
			b.text.WriteString(cb.Thinking)
		case "redacted_thinking":
			b.part = model.Part{Type: model.PartRedactedThinking, Data: cb.Data}
		default:
			b.index = -1 // a block this package leaves out
		}
		if b.index >= 0 {
			s.parts++
		}
		s.blocks[ev.Index] = b
	case "content_block_delta":
		b := s.blocks[ev.Index]
		if b == nil || ev.Delta == nil {
			return false, s.bad("content_block_delta for block %d, which did not start", ev.Index)
		}
		if b.index < 0 {
			return false, nil
		}
		d := ev.Delta
		switch d.Type {
		case "text_delta":
			b.text.WriteString(d.Text)
			s.delta(model.Delta{Type: model.DeltaText, Index: b.index, Text: d.Text})
		case "input_json_delta":
			b.text.WriteString(d.PartialJSON)
			s.delta(model.Delta{Type: model.DeltaToolInput, Index: b.index, Text: d.PartialJSON})
		case "thinking_delta":
			b.text.WriteString(d.Thinking)
			s.delta(model.Delta{Type: model.DeltaThinking, Index: b.index, Text: d.Thinking})
		case "signature_delta":
			b.part.Signature += d.Signature
		}
	case "content_block_stop":
		if s.blocks[ev.Index] == nil {
			return false, s.bad("content_block_stop for block %d, which did not start", ev.Index)
		}
	case "message_delta":
		if d := ev.Delta; d != nil {
			if d.StopReason != "" {
				s.resp.RawStopReason = d.StopReason
			}
			if d.StopSequence != nil {
				s.resp.StopSequence = *d.StopSequence
			}
		}
		if ev.Usage != nil {
			s.usage(ev.Usage)
		}
	case "message_stop":
		return true, nil
	case "error":
		e := ev.Error
		if e == nil {
			e = &apiError{Type: "error", Message: "an error event without an error"}
		}
		kind := kindOfType(e.Type, e.Message)
		if kind == "" {
			kind = model.KindServer
		}
		return false, &model.Error{Kind: kind, Provider: Name, Type: e.Type, Message: e.Message, RequestID: firstNonEmpty(ev.RequestID, s.requestID)}
	}
	return false, nil
}

// usage takes counts from message_start or the cumulative message_delta:
// a count a later event leaves out (or reports as 0) keeps its value.
func (s *stream) usage(u *usage) {
	set := func(dst *int64, v int64) {
		if v > 0 {
			*dst = v
		}
	}
	set(&s.resp.Usage.InputTokens, u.InputTokens)
	set(&s.resp.Usage.OutputTokens, u.OutputTokens)
	set(&s.resp.Usage.CacheReadTokens, u.CacheReadInputTokens)
	set(&s.resp.Usage.CacheWriteTokens, u.CacheCreationInputTokens)
}

func (s *stream) finish() (*model.Response, error) {
	if !s.started {
		return nil, s.bad("message_stop before message_start")
	}
	idx := make([]int, 0, len(s.blocks))
	for i, b := range s.blocks {
		if b.index >= 0 {
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	s.resp.Message = model.Message{Role: model.RoleAssistant, Content: make([]model.Part, 0, len(idx))}
	for _, i := range idx {
		b := s.blocks[i]
		p := b.part
		switch p.Type {
		case model.PartText, model.PartThinking:
			p.Text = b.text.String()
		case model.PartToolUse:
			p.Input = provider.ToolInput([]byte(b.text.String()))
		}
		s.resp.Message.Content = append(s.resp.Message.Content, p)
	}
	s.resp.StopReason = stopReason(s.resp.RawStopReason)
	if s.resp.RawStopReason == "" {
		return nil, s.bad("message_stop without a stop_reason")
	}
	return &s.resp, nil
}

func stopReason(raw string) model.StopReason {
	switch raw {
	case "end_turn":
		return model.StopEndTurn
	case "max_tokens", "model_context_window_exceeded":
		return model.StopMaxTokens
	case "tool_use":
		return model.StopToolUse
	case "pause_turn":
		return model.StopPauseTurn
	case "refusal":
		return model.StopRefusal
	case "stop_sequence":
		return model.StopSequence
	}
	return model.StopOther
}

// Errors.

type errorBody struct {
	Type      string    `json:"type"`
	Error     *apiError `json:"error"`
	RequestID string    `json:"request_id"`
}

// kindOfType classifies Anthropic's error types; "" for an unknown one.
func kindOfType(typ, msg string) model.ErrorKind {
	switch typ {
	case "invalid_request_error":
		if provider.ContextOverflow(msg) {
			return model.KindContextOverflow
		}
		return model.KindInvalidRequest
	case "not_found_error":
		return model.KindInvalidRequest
	case "request_too_large":
		return model.KindContextOverflow
	case "authentication_error", "permission_error", "billing_error":
		return model.KindAuth
	case "rate_limit_error":
		return model.KindRateLimited
	case "overloaded_error":
		return model.KindOverloaded
	case "api_error":
		return model.KindServer
	case "timeout_error":
		return model.KindTimeout
	}
	return ""
}

// statusError is the error of a response other than 200.
func statusError(resp *http.Response) *model.Error {
	body := provider.ReadErrorBody(resp)
	e := &model.Error{
		Kind:       provider.KindOfStatus(resp.StatusCode),
		Provider:   Name,
		Status:     resp.StatusCode,
		RequestID:  resp.Header.Get("Request-Id"),
		RetryAfter: provider.RetryAfter(resp.Header),
	}
	var eb errorBody
	switch {
	case json.Unmarshal(body, &eb) == nil && eb.Error != nil:
		e.Type, e.Message = eb.Error.Type, eb.Error.Message
		e.RequestID = firstNonEmpty(eb.RequestID, e.RequestID)
		if k := kindOfType(eb.Error.Type, eb.Error.Message); k != "" {
			e.Kind = k
		}
	case provider.LooksLikeHTML(resp.Header.Get("Content-Type"), body):
		e.Message = "an HTML page, not the API's JSON: " + provider.Snippet(body)
	default:
		e.Message = "a body that is not the API's error JSON: " + provider.Snippet(body)
	}
	return e
}

// notAStream is the error of a 200 that is not an event stream: an error
// body sent with 200, or anything else.
func notAStream(resp *http.Response) *model.Error {
	body := provider.ReadErrorBody(resp)
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
		kind := kindOfType(eb.Error.Type, eb.Error.Message)
		if kind == "" {
			kind = model.KindBadResponse
		}
		return &model.Error{Kind: kind, Provider: Name, Status: resp.StatusCode, Type: eb.Error.Type, Message: eb.Error.Message,
			RequestID: firstNonEmpty(eb.RequestID, resp.Header.Get("Request-Id")), RetryAfter: provider.RetryAfter(resp.Header)}
	}
	what := "not an event stream"
	if provider.LooksLikeHTML(resp.Header.Get("Content-Type"), body) {
		what = "an HTML page"
	}
	return &model.Error{Kind: model.KindBadResponse, Provider: Name, Status: resp.StatusCode,
		Message:   fmt.Sprintf("%s (Content-Type %q): %s", what, resp.Header.Get("Content-Type"), provider.Snippet(body)),
		RequestID: resp.Header.Get("Request-Id")}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
