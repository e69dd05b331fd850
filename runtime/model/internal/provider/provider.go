// Package provider holds what the provider clients share beyond the SSE
// reader: sending a request through the run's transport, turning every way
// it can fail into a *model.Error, and normalizing a tool call's input.
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/internal/send"
	"github.com/damperdev/damper/runtime/model"
)

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 64 << 10

// Post sends body as JSON to url with headers through env's transport,
// asking for an event stream. A failure to send is a *model.Error of kind
// denied, canceled or connection.
func Post(ctx context.Context, env model.Env, provider, url string, headers map[string]string, body []byte) (*http.Response, *model.Error) {
	return PostBinding(ctx, env, "", provider, url, headers, body)
}

// PostBinding is Post as a call on the Workers binding named binding, when
// not empty: the host calls the binding with the request the policy
// decided on, or sends it where it has no such binding.
func PostBinding(ctx context.Context, env model.Env, binding, provider, url string, headers map[string]string, body []byte) (*http.Response, *model.Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, &model.Error{Kind: model.KindInvalidRequest, Provider: provider, Message: "build the request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	var resp *http.Response
	if binding == "" {
		resp, err = send.Stream(env, req)
	} else {
		resp, err = send.Binding(env, binding, req)
	}
	if err != nil {
		return nil, SendError(ctx, provider, err)
	}
	return resp, nil
}

// SendError classifies an error of sending a request or reading its
// response body.
func SendError(ctx context.Context, provider string, err error) *model.Error {
	var deny *policy.DenyError
	switch {
	case errors.As(err, &deny):
		return &model.Error{Kind: model.KindDenied, Provider: provider, Message: "the agent's policy refused the request", Err: err}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil:
		return &model.Error{Kind: model.KindCanceled, Provider: provider, Message: "the run was canceled", Err: err}
	}
	return &model.Error{Kind: model.KindConnection, Provider: provider, Message: "the request failed", Err: err}
}

// KindOfStatus classifies an HTTP error status.
func KindOfStatus(status int) model.ErrorKind {
	switch status {
	case http.StatusTooManyRequests:
		return model.KindRateLimited
	case 529, http.StatusServiceUnavailable:
		return model.KindOverloaded
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return model.KindTimeout
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusPaymentRequired:
		return model.KindAuth
	case http.StatusRequestEntityTooLarge:
		return model.KindContextOverflow
	}
	if status >= 500 {
		return model.KindServer
	}
	return model.KindInvalidRequest
}

// ReadErrorBody reads up to 64 KiB of an error response's body and closes
// it. A failure to read leaves what was read.
func ReadErrorBody(resp *http.Response) []byte {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return b
}

// RetryAfter is how long the response asks to wait: retry-after-ms
// (OpenAI), or retry-after in seconds or as an HTTP date. 0 when it does
// not say or says nonsense.
func RetryAfter(h http.Header) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e9 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 && s < 1e6 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// LooksLikeHTML reports whether an error body is a web page (a proxy's or
// a load balancer's) rather than the provider's JSON.
func LooksLikeHTML(contentType string, body []byte) bool {
	if strings.HasPrefix(strings.ToLower(contentType), "text/html") {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '<'
}

// Snippet is the start of a body, to quote in an error.
func Snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strconv.Quote(s)
}

// ContextOverflow reports whether an invalid-request message says the
// prompt does not fit the context window, in the words of Anthropic,
// OpenAI and the OpenAI-compatible servers (vLLM, llama.cpp, ...).
func ContextOverflow(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{
		"prompt is too long",
		"exceed context limit",
		"maximum context length",
		"context length exceeded",
		"context_length_exceeded",
		"context window",
		"exceeds the model's context",
	} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// ToolInput is a tool call's input as the model streamed it, as a JSON
// value: {} when empty, the JSON string of the text when it is not JSON
// (so the conversation stays storable, and a schema for an object rejects
// it).
func ToolInput(raw []byte) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return json.RawMessage("{}")
	}
	if json.Valid(raw) {
		return json.RawMessage(bytes.Clone(raw))
	}
	b, _ := json.Marshal(string(raw))
	return b
}
