// Package fakeproviders runs fake model APIs on loopback for tests: an
// Anthropic Messages API and an OpenAI Chat Completions API (or any
// OpenAI-compatible path) that speak the real wire formats, streaming
// included, answer a queue of scripted turns, and record every request.
//
// Like the real services they check the credential (x-api-key, or
// Authorization: Bearer) against the key they were given and answer 401
// otherwise, check the request (the version header, the body's shape, a
// tool_use answered by its tool_result, thinking blocks sent back with
// the signature they were given) and answer 400 like the service would.
// A rejected request consumes no turn.
//
// Streams are framed with LF (or CRLF, Turn.CRLF) and written in pieces of
// random sizes, each flushed, so a client sees events split across reads
// at arbitrary bytes. A Server is an http.Handler too, for
// agenttest.Host.HTTP.
package fakeproviders

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Turn is one scripted answer. The zero Turn streams an empty text
// answer. Fields combine: content first (Thinking, Text, ToolCalls), then
// how the stream ends.
type Turn struct {
	// Thinking, with Anthropic, is streamed as a thinking block (signed:
	// the signature must come back unchanged).
	Thinking string
	// Text is streamed as text deltas.
	Text string
	// ToolCalls are streamed after the text.
	ToolCalls []ToolCall
	// StopReason is the provider's raw stop or finish reason; by default
	// tool_use / tool_calls when there are tool calls, else end_turn /
	// stop.
	StopReason string
	// Usage is reported in the stream; by default the input is counted
	// as a quarter of the request body's bytes and the output as a
	// quarter of the content's.
	Usage Usage
	// Model is the model id answered; by default the request's.
	Model string

	// Status, when set, answers with this status and the provider's error
	// body of ErrorType, ErrorCode (OpenAI's code) and Message instead of
	// a stream. RetryAfter, when set, is the retry-after header.
	Status     int
	ErrorType  string
	ErrorCode  string
	Message    string
	RetryAfter string

	// StreamError, when set (an error type such as "overloaded_error"),
	// ends the stream after the content with the provider's mid-stream
	// error event, with Message.
	StreamError string
	// Truncate ends the stream after the content, before its end events.
	Truncate bool
	// BadEvent, when set, is sent as an event's data after the first
	// event: data that is not JSON.
	BadEvent string
	// Raw, when set, is the whole answer instead: RawStatus (default
	// 200), RawContentType, and Raw as the body (an HTML page, garbage,
	// an error body sent with 200).
	Raw            string
	RawStatus      int
	RawContentType string

	// CRLF frames the stream with CRLF rather than LF.
	CRLF bool

	// Whole writes the stream in one write, with no pause: a model that
	// answers at once, for benchmarks of what the client adds.
	Whole bool
}

// ToolCall is a scripted tool call. Input is the arguments' text as the
// model writes it: usually JSON, anything for a test of bad arguments.
type ToolCall struct {
	ID, Name, Input string
}

// Usage is the token counts a turn reports.
type Usage struct {
	Input, Output, CacheRead, CacheWrite int
}

// Request is a request the server received.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
	// Status is what the server answered: 200 for a streamed turn.
	Status int
	seq    int
}

// JSON decodes the request's body into a generic value.
func (r *Request) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Server is a fake provider API.
type Server struct {
	api  api
	key  string
	path string

	srv *httptest.Server

	mu       sync.Mutex
	queue    []Turn
	requests []Request
	rng      *rand.Rand
	seq      int
}

type api int

const (
	anthropic api = iota
	openai
)

// AnthropicPath and OpenAIPath are where the fakes serve.
const (
	AnthropicPath = "/v1/messages"
	OpenAIPath    = "/v1/chat/completions"
)

// NewAnthropic starts a fake Anthropic Messages API that accepts key as
// x-api-key. It is closed when the test ends.
func NewAnthropic(tb testing.TB, key string) *Server {
	return start(tb, &Server{api: anthropic, key: key, path: AnthropicPath})
}

// NewOpenAI starts a fake OpenAI Chat Completions API that accepts key as
// a Bearer token. It is closed when the test ends.
func NewOpenAI(tb testing.TB, key string) *Server {
	return NewOpenAICompatible(tb, key, "/v1")
}

// NewOpenAICompatible is NewOpenAI serving at prefix + "/chat/completions",
// as an OpenAI-compatible service does (prefix such as
// "/client/v4/accounts/acc/ai/v1").
func NewOpenAICompatible(tb testing.TB, key, prefix string) *Server {
	return start(tb, &Server{api: openai, key: key, path: strings.TrimSuffix(prefix, "/") + "/chat/completions"})
}

func start(tb testing.TB, s *Server) *Server {
	s.rng = rand.New(rand.NewPCG(uint64(len(tb.Name())), 0x5eed))
	s.srv = httptest.NewServer(s)
	tb.Cleanup(s.srv.Close)
	return s
}

// URL is the server's origin, http://127.0.0.1:PORT: the target to point
// the service at (DAMPER_TARGETS=anthropic=URL, agenttest.Host.Targets).
func (s *Server) URL() string { return s.srv.URL }

// Seed reseeds the random sizes of the stream's pieces.
func (s *Server) Seed(seed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rng = rand.New(rand.NewPCG(seed, 0x5eed))
}

// Push appends turns to the queue the server answers from, in order.
func (s *Server) Push(turns ...Turn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, turns...)
}

// Drop empties the queue and returns how many turns it held: a test whose
// client gave up early keeps the next test from its turns.
func (s *Server) Drop() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.queue)
	s.queue = nil
	return n
}

// Pending is how many pushed turns are still unanswered.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Requests returns every request received so far, rejected ones included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Turns returns the requests that were answered with a scripted turn
// (stream, error status or raw answer).
func (s *Server) Turns() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Header.Get(turnHeader) != "" {
			out = append(out, r)
		}
	}
	return out
}

// turnHeader marks a recorded request that took a turn.
const turnHeader = "X-Fake-Turn"

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	rec := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body, seq: seq}
	status := s.serve(w, r, &rec, seq)
	rec.Status = status
	s.record(rec)
}

// record adds rec to the requests unless it was already recorded when
// its turn was taken: a client reads a whole answer before the handler
// returns, so a request is recorded before the answer is written.
func (s *Server) record(rec Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.requests {
		if s.requests[i].seq == rec.seq {
			s.requests[i] = rec
			return
		}
	}
	s.requests = append(s.requests, rec)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rec *Request, seq int) int {
	if r.URL.Path != s.path {
		return s.fail(w, http.StatusNotFound, "not_found_error", "", fmt.Sprintf("no route %s", r.URL.Path), "", seq)
	}
	if r.Method != http.MethodPost {
		return s.fail(w, http.StatusMethodNotAllowed, "invalid_request_error", "", "only POST", "", seq)
	}
	if !s.authorized(r.Header) {
		if s.api == anthropic {
			return s.fail(w, http.StatusUnauthorized, "authentication_error", "", "invalid x-api-key", "", seq)
		}
		return s.fail(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided.", "", seq)
	}
	if s.api == anthropic && r.Header.Get("anthropic-version") == "" {
		return s.fail(w, http.StatusBadRequest, "invalid_request_error", "", "anthropic-version: header is required", "", seq)
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return s.fail(w, http.StatusBadRequest, "invalid_request_error", "", "Content-Type must be application/json", "", seq)
	}
	var req map[string]any
	if err := json.Unmarshal(rec.Body, &req); err != nil {
		return s.fail(w, http.StatusBadRequest, "invalid_request_error", "", "the body is not JSON: "+err.Error(), "", seq)
	}
	var problem string
	if s.api == anthropic {
		problem = checkAnthropic(req)
	} else {
		problem = checkOpenAI(req)
	}
	if problem != "" {
		return s.fail(w, http.StatusBadRequest, "invalid_request_error", "", problem, "", seq)
	}

	s.mu.Lock()
	if len(s.queue) == 0 {
		s.mu.Unlock()
		return s.fail(w, http.StatusBadRequest, "invalid_request_error", "", "fakeproviders: no scripted turn left", "", seq)
	}
	t := s.queue[0]
	s.queue = s.queue[1:]
	s.mu.Unlock()
	rec.Header.Set(turnHeader, fmt.Sprint(seq))
	rec.Status = cmp.Or(t.Status, http.StatusOK)
	if t.Raw != "" {
		rec.Status = cmp.Or(t.RawStatus, http.StatusOK)
	}
	s.record(*rec)

	switch {
	case t.Raw != "":
		status := t.RawStatus
		if status == 0 {
			status = http.StatusOK
		}
		if t.RawContentType != "" {
			w.Header().Set("Content-Type", t.RawContentType)
		}
		s.setRequestID(w.Header(), seq)
		w.WriteHeader(status)
		s.write(w, t.Raw)
		return status
	case t.Status != 0:
		return s.fail(w, t.Status, t.ErrorType, t.ErrorCode, t.Message, t.RetryAfter, seq)
	}
	model, _ := req["model"].(string)
	if t.Model != "" {
		model = t.Model
	}
	if t.Usage == (Usage{}) {
		out := len(t.Text) + len(t.Thinking)
		for _, c := range t.ToolCalls {
			out += len(c.Name) + len(c.Input)
		}
		t.Usage = Usage{Input: len(rec.Body)/4 + 1, Output: out/4 + 1}
	}
	var events []string
	if s.api == anthropic {
		events = anthropicStream(&t, model, seq)
	} else {
		usage, _ := req["stream_options"].(map[string]any)
		events = openaiStream(&t, model, seq, usage["include_usage"] == true)
	}
	eol := "\n"
	if t.CRLF {
		eol = "\r\n"
	}
	var b strings.Builder
	for _, e := range events {
		b.WriteString(strings.ReplaceAll(e, "\n", eol))
		b.WriteString(eol + eol)
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	s.setRequestID(w.Header(), seq)
	w.WriteHeader(http.StatusOK)
	if t.Whole {
		_, _ = io.WriteString(w, b.String())
		return http.StatusOK
	}
	s.write(w, b.String())
	return http.StatusOK
}

func (s *Server) authorized(h http.Header) bool {
	if s.api == anthropic {
		return h.Get("x-api-key") == s.key && len(h.Values("x-api-key")) == 1
	}
	return h.Get("Authorization") == "Bearer "+s.key && len(h.Values("Authorization")) == 1
}

func (s *Server) setRequestID(h http.Header, seq int) {
	if s.api == anthropic {
		h.Set("request-id", fmt.Sprintf("req_fake_%d", seq))
	} else {
		h.Set("x-request-id", fmt.Sprintf("req_fake_%d", seq))
	}
}

// fail answers status with the provider's error body.
func (s *Server) fail(w http.ResponseWriter, status int, typ, code, msg, retryAfter string, seq int) int {
	var body []byte
	if s.api == anthropic {
		if typ == "" {
			typ = "api_error"
		}
		body, _ = json.Marshal(map[string]any{
			"type": "error", "error": map[string]string{"type": typ, "message": msg},
			"request_id": fmt.Sprintf("req_fake_%d", seq),
		})
	} else {
		e := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
		if code != "" {
			e["code"] = code
		}
		body, _ = json.Marshal(map[string]any{"error": e})
	}
	w.Header().Set("Content-Type", "application/json")
	if retryAfter != "" {
		w.Header().Set("retry-after", retryAfter)
	}
	s.setRequestID(w.Header(), seq)
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

// pieceGap is the pause after each piece but the last: without it the
// pieces coalesce on the way and a client reads them in one go.
const pieceGap = 200 * time.Microsecond

// write sends body in pieces of 1 to 64 bytes, flushing each.
func (s *Server) write(w http.ResponseWriter, body string) {
	f, _ := w.(http.Flusher)
	for len(body) > 0 {
		s.mu.Lock()
		n := min(1+s.rng.IntN(64), len(body))
		s.mu.Unlock()
		if _, err := io.WriteString(w, body[:n]); err != nil {
			return
		}
		if f != nil {
			f.Flush()
		}
		body = body[n:]
		if len(body) > 0 && f != nil {
			time.Sleep(pieceGap)
		}
	}
}

// pieces cuts s into three roughly equal pieces (fewer when short), as a
// model streams it.
func pieces(s string) []string {
	if len(s) < 3 {
		if s == "" {
			return nil
		}
		return []string{s}
	}
	a, b := len(s)/3, 2*len(s)/3
	return []string{s[:a], s[a:b], s[b:]}
}

func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Signature is the signature the fake Anthropic API gives a thinking
// block, and checks when the block comes back.
func Signature(thinking string) string {
	sum := sha256.Sum256([]byte("fake-signature:" + thinking))
	return "sig_" + hex.EncodeToString(sum[:12])
}

func anthropicStream(t *Turn, model string, seq int) []string {
	ev := func(typ string, data map[string]any) string {
		data["type"] = typ
		return "event: " + typ + "\ndata: " + js(data)
	}
	out := []string{ev("message_start", map[string]any{"message": map[string]any{
		"id": fmt.Sprintf("msg_fake_%d", seq), "type": "message", "role": "assistant", "model": model,
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": t.Usage.Input, "cache_creation_input_tokens": t.Usage.CacheWrite,
			"cache_read_input_tokens": t.Usage.CacheRead, "output_tokens": 1},
	}})}
	if t.BadEvent != "" {
		out = append(out, "event: content_block_delta\ndata: "+t.BadEvent)
	}
	out = append(out, ev("ping", map[string]any{}))
	index := 0
	if t.Thinking != "" {
		out = append(out, ev("content_block_start", map[string]any{"index": index, "content_block": map[string]any{"type": "thinking", "thinking": "", "signature": ""}}))
		for _, p := range pieces(t.Thinking) {
			out = append(out, ev("content_block_delta", map[string]any{"index": index, "delta": map[string]any{"type": "thinking_delta", "thinking": p}}))
		}
		out = append(out, ev("content_block_delta", map[string]any{"index": index, "delta": map[string]any{"type": "signature_delta", "signature": Signature(t.Thinking)}}))
		out = append(out, ev("content_block_stop", map[string]any{"index": index}))
		index++
	}
	if t.Text != "" || len(t.ToolCalls) == 0 {
		out = append(out, ev("content_block_start", map[string]any{"index": index, "content_block": map[string]any{"type": "text", "text": ""}}))
		for i, p := range pieces(t.Text) {
			out = append(out, ev("content_block_delta", map[string]any{"index": index, "delta": map[string]any{"type": "text_delta", "text": p}}))
			if i == 0 {
				out = append(out, ev("ping", map[string]any{}))
			}
		}
		out = append(out, ev("content_block_stop", map[string]any{"index": index}))
		index++
	}
	for _, c := range t.ToolCalls {
		out = append(out, ev("content_block_start", map[string]any{"index": index, "content_block": map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": map[string]any{}}}))
		for _, p := range pieces(c.Input) {
			out = append(out, ev("content_block_delta", map[string]any{"index": index, "delta": map[string]any{"type": "input_json_delta", "partial_json": p}}))
		}
		out = append(out, ev("content_block_stop", map[string]any{"index": index}))
		index++
	}
	if t.StreamError != "" {
		return append(out, ev("error", map[string]any{"error": map[string]any{"type": t.StreamError, "message": t.Message}}))
	}
	if t.Truncate {
		return out
	}
	stop := t.StopReason
	if stop == "" {
		stop = "end_turn"
		if len(t.ToolCalls) > 0 {
			stop = "tool_use"
		}
	}
	out = append(out, ev("message_delta", map[string]any{"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": t.Usage.Output}}))
	return append(out, ev("message_stop", map[string]any{}))
}

func openaiStream(t *Turn, model string, seq int, includeUsage bool) []string {
	id := fmt.Sprintf("chatcmpl-fake%d", seq)
	chunk := func(delta map[string]any, finish any) string {
		return "data: " + js(map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}})
	}
	out := []string{chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil)}
	if t.BadEvent != "" {
		out = append(out, "data: "+t.BadEvent)
	}
	for _, p := range pieces(t.Text) {
		out = append(out, chunk(map[string]any{"content": p}, nil))
	}
	for i, c := range t.ToolCalls {
		out = append(out, chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "id": c.ID, "type": "function",
			"function": map[string]any{"name": c.Name, "arguments": ""}}}}, nil))
		for _, p := range pieces(c.Input) {
			out = append(out, chunk(map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": p}}}}, nil))
		}
	}
	if t.StreamError != "" {
		return append(out, "data: "+js(map[string]any{"error": map[string]any{"message": t.Message, "type": t.StreamError, "param": nil, "code": nil}}))
	}
	if t.Truncate {
		return out
	}
	stop := t.StopReason
	if stop == "" {
		stop = "stop"
		if len(t.ToolCalls) > 0 {
			stop = "tool_calls"
		}
	}
	out = append(out, chunk(map[string]any{}, stop))
	if includeUsage {
		out = append(out, "data: "+js(map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": model,
			"choices": []any{}, "usage": map[string]any{
				"prompt_tokens": t.Usage.Input + t.Usage.CacheRead, "completion_tokens": t.Usage.Output,
				"total_tokens":          t.Usage.Input + t.Usage.CacheRead + t.Usage.Output,
				"prompt_tokens_details": map[string]any{"cached_tokens": t.Usage.CacheRead},
			}}))
	}
	return append(out, "data: [DONE]")
}

// checkAnthropic returns what the Messages API would refuse in req, or "".
func checkAnthropic(req map[string]any) string {
	if m, _ := req["model"].(string); m == "" {
		return "model: Field required"
	}
	if n, ok := req["max_tokens"].(float64); !ok || n < 1 || n != float64(int(n)) {
		return "max_tokens: Field required (a positive integer)"
	}
	if req["stream"] != true {
		return "fakeproviders: only streaming requests are served"
	}
	if sys, ok := req["system"]; ok {
		switch sys := sys.(type) {
		case string:
		case []any:
			for _, b := range sys {
				if bm, _ := b.(map[string]any); bm["type"] != "text" {
					return "system: blocks must be text"
				}
			}
		default:
			return "system: Input should be a valid string or list"
		}
	}
	msgs, _ := req["messages"].([]any)
	if len(msgs) == 0 {
		return "messages: at least one message is required"
	}
	var pending []string // tool_use ids of the previous assistant message
	for i, raw := range msgs {
		m, _ := raw.(map[string]any)
		role, _ := m["role"].(string)
		if i == 0 && role != "user" {
			return "messages: first message must use the \"user\" role"
		}
		blocks, err := anthropicBlocks(m["content"])
		if err != "" {
			return fmt.Sprintf("messages.%d.content: %s", i, err)
		}
		switch role {
		case "user":
			answered := map[string]bool{}
			for j, b := range blocks {
				if b["type"] == "tool_result" {
					id, _ := b["tool_use_id"].(string)
					if !contains(pending, id) {
						return fmt.Sprintf("messages.%d.content.%d: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, j, id)
					}
					answered[id] = true
				}
			}
			for _, id := range pending {
				if !answered[id] {
					return fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i-1, id)
				}
			}
			pending = nil
		case "assistant":
			if len(pending) > 0 {
				return fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s.", i-1, strings.Join(pending, ", "))
			}
			for j, b := range blocks {
				switch b["type"] {
				case "tool_use":
					id, _ := b["id"].(string)
					name, _ := b["name"].(string)
					if _, ok := b["input"].(map[string]any); !ok || id == "" || name == "" {
						return fmt.Sprintf("messages.%d.content.%d.tool_use: id, name and an object input are required", i, j)
					}
					pending = append(pending, id)
				case "thinking":
					text, _ := b["thinking"].(string)
					if sig, _ := b["signature"].(string); sig != Signature(text) {
						return fmt.Sprintf("messages.%d.content.%d: Invalid `signature` in `thinking` block", i, j)
					}
				case "tool_result":
					return fmt.Sprintf("messages.%d.content.%d: tool_result blocks are only allowed in user messages", i, j)
				}
			}
		default:
			return fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
	}
	if len(pending) > 0 {
		return fmt.Sprintf("messages: `tool_use` ids were found without `tool_result` blocks immediately after: %s", strings.Join(pending, ", "))
	}
	tools, _ := req["tools"].([]any)
	names := map[string]bool{}
	for i, raw := range tools {
		t, _ := raw.(map[string]any)
		name, _ := t["name"].(string)
		schema, _ := t["input_schema"].(map[string]any)
		if name == "" || schema == nil || schema["type"] != "object" {
			return fmt.Sprintf("tools.%d: name and an input_schema of type object are required", i)
		}
		if names[name] {
			return fmt.Sprintf("tools: Tool names must be unique (%s)", name)
		}
		names[name] = true
	}
	if tc, ok := req["tool_choice"].(map[string]any); ok {
		switch tc["type"] {
		case "auto", "any", "none":
		case "tool":
			if n, _ := tc["name"].(string); !names[n] {
				return fmt.Sprintf("tool_choice: tool %q is not among the tools", n)
			}
		default:
			return "tool_choice.type: unknown"
		}
	}
	return ""
}

func anthropicBlocks(content any) ([]map[string]any, string) {
	switch c := content.(type) {
	case string:
		if c == "" {
			return nil, "text content blocks must be non-empty"
		}
		return []map[string]any{{"type": "text", "text": c}}, ""
	case []any:
		if len(c) == 0 {
			return nil, "at least one content block is required"
		}
		out := make([]map[string]any, len(c))
		for i, raw := range c {
			b, _ := raw.(map[string]any)
			switch b["type"] {
			case "text":
				if t, _ := b["text"].(string); t == "" {
					return nil, fmt.Sprintf("%d: text content blocks must be non-empty", i)
				}
			case "tool_use", "tool_result", "thinking", "redacted_thinking", "image", "document":
			default:
				return nil, fmt.Sprintf("%d.type: unknown block type %v", i, b["type"])
			}
			out[i] = b
		}
		return out, ""
	}
	return nil, "Input should be a valid string or list"
}

// checkOpenAI returns what Chat Completions would refuse in req, or "".
func checkOpenAI(req map[string]any) string {
	if m, _ := req["model"].(string); m == "" {
		return "you must provide a model parameter"
	}
	if req["stream"] != true {
		return "fakeproviders: only streaming requests are served"
	}
	msgs, _ := req["messages"].([]any)
	if len(msgs) == 0 {
		return "[] is too short - 'messages'"
	}
	var pending []string
	for i, raw := range msgs {
		m, _ := raw.(map[string]any)
		role, _ := m["role"].(string)
		if role != "tool" && len(pending) > 0 {
			return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " + strings.Join(pending, ", ")
		}
		switch role {
		case "system", "developer", "user":
			if _, ok := m["content"].(string); !ok {
				return fmt.Sprintf("messages[%d].content: a string is required", i)
			}
		case "assistant":
			calls, _ := m["tool_calls"].([]any)
			if _, ok := m["content"].(string); !ok && len(calls) == 0 {
				return fmt.Sprintf("messages[%d]: an assistant message needs content or tool_calls", i)
			}
			for j, rc := range calls {
				c, _ := rc.(map[string]any)
				f, _ := c["function"].(map[string]any)
				id, _ := c["id"].(string)
				if _, ok := f["arguments"].(string); !ok || id == "" || c["type"] != "function" {
					return fmt.Sprintf("messages[%d].tool_calls[%d]: id, type function and string arguments are required", i, j)
				}
				pending = append(pending, id)
			}
		case "tool":
			id, _ := m["tool_call_id"].(string)
			if !contains(pending, id) {
				return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
			}
			pending = remove(pending, id)
		default:
			return fmt.Sprintf("messages[%d].role: invalid value %q", i, role)
		}
	}
	if len(pending) > 0 {
		return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " + strings.Join(pending, ", ")
	}
	tools, _ := req["tools"].([]any)
	for i, raw := range tools {
		t, _ := raw.(map[string]any)
		f, _ := t["function"].(map[string]any)
		if name, _ := f["name"].(string); t["type"] != "function" || name == "" {
			return fmt.Sprintf("tools[%d]: type function and a name are required", i)
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func remove(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
