// Package openai is the provider "openai": OpenAI's models through the
// Chat Completions API, streamed, and any service that speaks it
// (Compatible). Import it for its side effect:
//
//	import _ "github.com/damperdev/damper/runtime/model/openai"
//
//	m, err := model.Open("openai/gpt-4.1", ctx)
//
// Requests go to https://api.openai.com/v1/chat/completions with no key:
// the agent's policy needs the service policy.OpenAI(), with which the
// host adds "Authorization: Bearer" from the secret OPENAI_API_KEY. Point
// the service elsewhere with DAMPER_TARGETS=openai=https://….
//
// Chat Completions has no thinking blocks to send back and no error flag
// on tool results: thinking parts are left out of requests, and an error
// result's content is prefixed with "Error: ". A reasoning_content delta
// (vLLM, DeepSeek) becomes a thinking part.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/runtime/model/internal/provider"
	"github.com/damperdev/damper/runtime/model/internal/sse"
)

// Name is the provider's registered name.
const Name = "openai"

// Origin is the OpenAI API's origin, the one policy.OpenAI declares.
const Origin = "https://api.openai.com"

func init() {
	model.Register(Name, Compatible(Name, Origin+"/v1"))
}

// Compatible returns the Opener of a provider that speaks Chat Completions
// at baseURL: the service's origin and path prefix, to which
// "/chat/completions" is added. Register it under a name of your own, and
// declare the service, with its credential, in the agent's policy:
//
//	model.Register("workersai", openai.Compatible("workersai",
//		"https://api.cloudflare.com/client/v4/accounts/ACCOUNT_ID/ai/v1"))
//	m, err := model.Open("workersai/@cf/meta/llama-3.3-70b-instruct-fp8-fast", ctx)
//
// The output cap is sent as max_tokens, which such services understand,
// where OpenAI's own API gets max_completion_tokens.
func Compatible(provider, baseURL string) model.Opener {
	return CompatibleBinding(provider, baseURL, "")
}

// CompatibleBinding is Compatible for a service a Workers binding also
// reaches (binding "AI": Workers AI): each request, decided by the agent's
// policy as for Compatible, is a call on the binding, which the Worker
// makes with env.AI when it has the binding; the local host, and a Worker
// without it, send the request to baseURL instead. runtime/model/workersai
// registers one.
func CompatibleBinding(provider, baseURL, binding string) model.Opener {
	url := strings.TrimSuffix(baseURL, "/") + "/chat/completions"
	own := strings.HasPrefix(baseURL, Origin+"/")
	return func(id string, env model.Env) (model.Model, error) {
		return &client{provider: provider, url: url, own: own, id: id, env: env, binding: binding}, nil
	}
}

type client struct {
	provider string
	url      string
	own      bool // OpenAI's own API
	id       string
	env      model.Env
	binding  string
}

func (c *client) Turn(ctx context.Context, req *model.Request, onDelta func(model.Delta)) (*model.Response, error) {
	body, err := c.encodeRequest(req)
	if err != nil {
		return nil, &model.Error{Kind: model.KindInvalidRequest, Provider: c.provider, Message: "encode the request", Err: err}
	}
	resp, merr := provider.PostBinding(ctx, c.env, c.binding, c.provider, c.url, nil, body)
	if merr != nil {
		return nil, merr
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.statusError(resp)
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return nil, c.notAStream(resp)
	}
	defer resp.Body.Close()
	s := stream{c: c, onDelta: onDelta, requestID: resp.Header.Get("X-Request-Id"), text: -1, thinking: -1, calls: map[int]*call{}}
	return s.read(ctx, sse.NewReader(resp.Body))
}

// The request body.

type request struct {
	Model               string          `json:"model"`
	Messages            []message       `json:"messages"`
	Tools               []tool          `json:"tools,omitempty"`
	ToolChoice          any             `json:"tool_choice,omitempty"`
	MaxCompletionTokens int             `json:"max_completion_tokens,omitempty"`
	MaxTokens           int             `json:"max_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	Stop                []string        `json:"stop,omitempty"`
	Stream              bool            `json:"stream"`
	StreamOptions       json.RawMessage `json:"stream_options"`
}

type message struct {
	Role       string     `json:"role"`
	Content    *string    `json:"content"`
	ToolCalls  []toolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

type toolCall struct {
	ID       string   `json:"id"`
	Type     string   `json:"type"`
	Function function `json:"function"`
}

type function struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type tool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

func (c *client) encodeRequest(req *model.Request) ([]byte, error) {
	r := request{Model: c.id, Temperature: req.Temperature, Stop: req.StopSequences, Stream: true,
		StreamOptions: json.RawMessage(`{"include_usage":true}`)}
	if c.own {
		r.MaxCompletionTokens = req.MaxTokens
	} else {
		r.MaxTokens = req.MaxTokens
	}
	if req.System != "" {
		r.Messages = append(r.Messages, message{Role: "system", Content: &req.System})
	}
	for _, m := range req.Messages {
		switch m.Role {
		case model.RoleUser:
			// Results first: they must follow the assistant's calls.
			var text []string
			for _, p := range m.Content {
				switch p.Type {
				case model.PartToolResult:
					content := p.Text
					if p.IsError {
						content = "Error: " + content
					}
					r.Messages = append(r.Messages, message{Role: "tool", ToolCallID: p.ToolUseID, Content: &content})
				case model.PartText:
					text = append(text, p.Text)
				}
			}
			if len(text) > 0 {
				s := strings.Join(text, "\n\n")
				r.Messages = append(r.Messages, message{Role: "user", Content: &s})
			}
		case model.RoleAssistant:
			msg := message{Role: "assistant"}
			var text []string
			for _, p := range m.Content {
				switch p.Type {
				case model.PartText:
					text = append(text, p.Text)
				case model.PartToolUse:
					args := string(p.Input)
					if args == "" {
						args = "{}"
					}
					msg.ToolCalls = append(msg.ToolCalls, toolCall{ID: p.ID, Type: "function", Function: function{Name: p.Name, Arguments: args}})
				}
			}
			if s := strings.Join(text, ""); s != "" || len(msg.ToolCalls) == 0 {
				msg.Content = &s
			}
			r.Messages = append(r.Messages, msg)
		default:
			return nil, fmt.Errorf("a message with role %q", m.Role)
		}
	}
	for _, t := range req.Tools {
		var ot tool
		ot.Type = "function"
		ot.Function.Name, ot.Function.Description, ot.Function.Parameters = t.Name, t.Description, t.InputSchema
		if len(ot.Function.Parameters) == 0 {
			ot.Function.Parameters = json.RawMessage(`{"type":"object"}`)
		}
		r.Tools = append(r.Tools, ot)
	}
	switch req.ToolChoice.Mode {
	case "", model.ToolAuto:
	case model.ToolAny:
		r.ToolChoice = "required"
	case model.ToolNone:
		r.ToolChoice = "none"
	case model.ToolName:
		r.ToolChoice = map[string]any{"type": "function", "function": map[string]string{"name": req.ToolChoice.Name}}
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

// The stream.

type apiError struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Param   json.RawMessage `json:"param"`
	Code    json.RawMessage `json:"code"` // a string, a number or null
}

func (e *apiError) code() string {
	var s string
	if json.Unmarshal(e.Code, &s) == nil {
		return s
	}
	return strings.Trim(string(e.Code), `"`)
}

type chunk struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   *struct {
		PromptTokens        int64 `json:"prompt_tokens"`
		CompletionTokens    int64 `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error *apiError `json:"error"`
}

type choice struct {
	Index int `json:"index"`
	Delta struct {
		Content          *string         `json:"content"`
		ReasoningContent *string         `json:"reasoning_content"`
		Refusal          *string         `json:"refusal"`
		ToolCalls        []toolCallDelta `json:"tool_calls"`
	} `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type toolCallDelta struct {
	Index    int    `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// call is a tool call being streamed.
type call struct {
	index    int // in the message
	id, name string
	args     strings.Builder
}

type stream struct {
	c         *client
	onDelta   func(model.Delta)
	requestID string
	resp      model.Response

	parts          int
	text, thinking int // part indexes, -1 before their first delta
	textB, thinkB  strings.Builder
	calls          map[int]*call // by the stream's tool call index
	order          []*call
	refused        bool
	finished       bool
}

func (s *stream) delta(d model.Delta) {
	if s.onDelta != nil {
		s.onDelta(d)
	}
}

func (s *stream) bad(format string, args ...any) *model.Error {
	return &model.Error{Kind: model.KindBadResponse, Provider: s.c.provider, Status: http.StatusOK, Message: fmt.Sprintf(format, args...), RequestID: s.requestID}
}

func (s *stream) read(ctx context.Context, r *sse.Reader) (*model.Response, error) {
	s.resp.Provider = s.c.provider
	for {
		e, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				if s.finished {
					return s.finish() // only [DONE] (and perhaps usage) missing
				}
				return nil, s.bad("the stream ended before a finish_reason")
			}
			if errors.Is(err, sse.ErrTooLong) {
				return nil, s.bad("%v", err)
			}
			merr := provider.SendError(ctx, s.c.provider, fmt.Errorf("read the stream: %w", err))
			merr.RequestID = s.requestID
			return nil, merr
		}
		if string(e.Data) == "[DONE]" {
			if !s.finished {
				return nil, s.bad("[DONE] before a finish_reason")
			}
			return s.finish()
		}
		var ch chunk
		if !fastChunk(e.Data, &ch) {
			ch = chunk{}
			if err := json.Unmarshal(e.Data, &ch); err != nil {
				return nil, s.bad("an event whose data is not JSON: %s", provider.Snippet(e.Data))
			}
		}
		if ch.Error != nil {
			return nil, s.c.apiError(ch.Error, 0, s.requestID)
		}
		if err := s.apply(&ch); err != nil {
			return nil, err
		}
	}
}

func (s *stream) apply(ch *chunk) *model.Error {
	if ch.Model != "" {
		s.resp.Model = ch.Model
	}
	if ch.ID != "" {
		s.resp.ID = ch.ID
	}
	if u := ch.Usage; u != nil {
		cached := int64(0)
		if u.PromptTokensDetails != nil {
			cached = u.PromptTokensDetails.CachedTokens
		}
		s.resp.Usage = model.Usage{InputTokens: max(u.PromptTokens-cached, 0), OutputTokens: u.CompletionTokens, CacheReadTokens: cached}
	}
	for i := range ch.Choices {
		c := &ch.Choices[i]
		if c.Index != 0 {
			continue // one choice asked for
		}
		d := &c.Delta
		if d.ReasoningContent != nil && *d.ReasoningContent != "" {
			if s.thinking < 0 {
				s.thinking = s.parts
				s.parts++
			}
			s.thinkB.WriteString(*d.ReasoningContent)
			s.delta(model.Delta{Type: model.DeltaThinking, Index: s.thinking, Text: *d.ReasoningContent})
		}
		for _, text := range []*string{d.Content, d.Refusal} {
			if text == nil || *text == "" {
				continue
			}
			if text == d.Refusal {
				s.refused = true
			}
			if s.text < 0 {
				s.text = s.parts
				s.parts++
			}
			s.textB.WriteString(*text)
			s.delta(model.Delta{Type: model.DeltaText, Index: s.text, Text: *text})
		}
		for _, tc := range d.ToolCalls {
			cl := s.calls[tc.Index]
			if cl == nil {
				cl = &call{index: s.parts, id: tc.ID, name: tc.Function.Name}
				if cl.id == "" {
					cl.id = fmt.Sprintf("call_%d", tc.Index)
				}
				s.parts++
				s.calls[tc.Index] = cl
				s.order = append(s.order, cl)
				s.delta(model.Delta{Type: model.DeltaToolUse, Index: cl.index, ID: cl.id, Name: cl.name})
			} else if cl.name == "" && tc.Function.Name != "" {
				cl.name = tc.Function.Name
			}
			if tc.Function.Arguments != "" {
				cl.args.WriteString(tc.Function.Arguments)
				s.delta(model.Delta{Type: model.DeltaToolInput, Index: cl.index, Text: tc.Function.Arguments})
			}
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			s.resp.RawStopReason = *c.FinishReason
			s.finished = true
		}
	}
	return nil
}

func (s *stream) finish() (*model.Response, error) {
	parts := make([]model.Part, s.parts)
	if s.thinking >= 0 {
		parts[s.thinking] = model.Part{Type: model.PartThinking, Text: s.thinkB.String()}
	}
	if s.text >= 0 {
		parts[s.text] = model.Text(s.textB.String())
	}
	for _, cl := range s.order {
		parts[cl.index] = model.Part{Type: model.PartToolUse, ID: cl.id, Name: cl.name, Input: provider.ToolInput([]byte(cl.args.String()))}
	}
	s.resp.Message = model.Message{Role: model.RoleAssistant, Content: parts}
	switch s.resp.RawStopReason {
	case "stop":
		s.resp.StopReason = model.StopEndTurn
	case "length":
		s.resp.StopReason = model.StopMaxTokens
	case "tool_calls", "function_call":
		s.resp.StopReason = model.StopToolUse
	case "content_filter":
		s.resp.StopReason = model.StopContentFilter
	default:
		s.resp.StopReason = model.StopOther
	}
	if s.refused {
		s.resp.StopReason = model.StopRefusal
	}
	return &s.resp, nil
}

// Errors.

// apiError classifies an error body, with status 0 for one mid-stream.
func (c *client) apiError(e *apiError, status int, requestID string) *model.Error {
	me := &model.Error{Kind: provider.KindOfStatus(status), Provider: c.provider, Status: status, Type: e.Type, Message: e.Message, RequestID: requestID}
	code := e.code()
	if code != "" && e.Type == "" {
		me.Type = code
	} else if code != "" && code != e.Type {
		me.Type = e.Type + "/" + code
	}
	switch {
	case code == "context_length_exceeded" || code == "string_above_max_length" || provider.ContextOverflow(e.Message):
		me.Kind = model.KindContextOverflow
	case code == "insufficient_quota" || e.Type == "insufficient_quota" || code == "invalid_api_key":
		me.Kind = model.KindAuth
	case status == 0 || status == http.StatusOK:
		switch {
		case code == "rate_limit_exceeded" || e.Type == "rate_limit_error" || e.Type == "tokens" || e.Type == "requests":
			me.Kind = model.KindRateLimited
		case e.Type == "invalid_request_error":
			me.Kind = model.KindInvalidRequest
		case e.Type == "authentication_error" || e.Type == "permission_error":
			me.Kind = model.KindAuth
		case strings.Contains(strings.ToLower(e.Message), "overloaded"):
			me.Kind = model.KindOverloaded
		default:
			me.Kind = model.KindServer // server_error, or one it did not name
		}
	}
	return me
}

type errorBody struct {
	Error *apiError `json:"error"`
}

func (c *client) statusError(resp *http.Response) *model.Error {
	body := provider.ReadErrorBody(resp)
	requestID := resp.Header.Get("X-Request-Id")
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
		me := c.apiError(eb.Error, resp.StatusCode, requestID)
		me.RetryAfter = provider.RetryAfter(resp.Header)
		return me
	}
	me := &model.Error{Kind: provider.KindOfStatus(resp.StatusCode), Provider: c.provider, Status: resp.StatusCode,
		RequestID: requestID, RetryAfter: provider.RetryAfter(resp.Header)}
	if provider.LooksLikeHTML(resp.Header.Get("Content-Type"), body) {
		me.Message = "an HTML page, not the API's JSON: " + provider.Snippet(body)
	} else {
		me.Message = "a body that is not the API's error JSON: " + provider.Snippet(body)
	}
	return me
}

func (c *client) notAStream(resp *http.Response) *model.Error {
	body := provider.ReadErrorBody(resp)
	requestID := resp.Header.Get("X-Request-Id")
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != nil {
		me := c.apiError(eb.Error, resp.StatusCode, requestID)
		me.RetryAfter = provider.RetryAfter(resp.Header)
		return me
	}
	what := "not an event stream"
	if provider.LooksLikeHTML(resp.Header.Get("Content-Type"), body) {
		what = "an HTML page"
	}
	return &model.Error{Kind: model.KindBadResponse, Provider: c.provider, Status: resp.StatusCode, RequestID: requestID,
		Message: fmt.Sprintf("%s (Content-Type %q): %s", what, resp.Header.Get("Content-Type"), provider.Snippet(body))}
}
