package model

import (
	"fmt"
	"strings"
	"time"
)

// ErrorKind is what went wrong with a turn, normalized across providers:
// what a caller branches on.
type ErrorKind string

// Error kinds. Retryable says which are transient.
const (
	// KindRateLimited: the account's rate limit (HTTP 429); RetryAfter
	// says when to try again, when the provider said.
	KindRateLimited ErrorKind = "rate_limited"
	// KindOverloaded: the provider is overloaded (Anthropic's 529, an
	// overloaded_error mid-stream, HTTP 503).
	KindOverloaded ErrorKind = "overloaded"
	// KindServer: the provider failed (HTTP 500, 502).
	KindServer ErrorKind = "server"
	// KindTimeout: the provider timed out (HTTP 504, 408).
	KindTimeout ErrorKind = "timeout"
	// KindConnection: the request did not reach the provider or its
	// answer broke off (the host's fetch failed: refused, reset, ...).
	KindConnection ErrorKind = "connection"
	// KindBadResponse: the provider answered something that is not its
	// wire format: garbage, a truncated stream, an HTML error page, an
	// error body with status 200, an event that is not JSON.
	KindBadResponse ErrorKind = "bad_response"
	// KindAuth: the credential is missing or wrong, or its account may
	// not do this (HTTP 401, 403, an exhausted quota).
	KindAuth ErrorKind = "auth"
	// KindInvalidRequest: the provider refused the request as malformed
	// (HTTP 400, 404, 422, ...): a bug, a wrong model id, a bad tool
	// schema. Sending it again fails again.
	KindInvalidRequest ErrorKind = "invalid_request"
	// KindContextOverflow: the prompt does not fit the model's context
	// window: compact the conversation and try again.
	KindContextOverflow ErrorKind = "context_overflow"
	// KindDenied: the agent's policy refused the request; it was never
	// sent (Err wraps the *policy.DenyError).
	KindDenied ErrorKind = "denied"
	// KindCanceled: the run was canceled.
	KindCanceled ErrorKind = "canceled"
)

// Error is a failed turn.
type Error struct {
	Kind     ErrorKind
	Provider string // the provider's registered name
	// Status is the HTTP status of the provider's answer; 0 when there
	// was none, or the error came mid-stream.
	Status int
	// Type and Message are the provider's error type
	// ("overloaded_error", "rate_limit_exceeded") and message, or this
	// package's description of what was wrong.
	Type    string
	Message string
	// RequestID is the provider's id of the request, for its support.
	RequestID string
	// RetryAfter is how long the provider asked to wait before trying
	// again (retry-after), 0 when it did not say.
	RetryAfter time.Duration
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Provider != "" {
		b.WriteString(e.Provider)
		b.WriteString(": ")
	}
	b.WriteString(string(e.Kind))
	switch {
	case e.Status != 0 && e.Type != "":
		fmt.Fprintf(&b, " (%d %s)", e.Status, e.Type)
	case e.Status != 0:
		fmt.Fprintf(&b, " (%d)", e.Status)
	case e.Type != "":
		fmt.Fprintf(&b, " (%s)", e.Type)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil && (e.Message == "" || !strings.Contains(e.Message, e.Err.Error())) {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether sending the same request again may succeed:
// rate limits, overload, server failures and timeouts, broken connections
// and broken responses.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindRateLimited, KindOverloaded, KindServer, KindTimeout, KindConnection, KindBadResponse:
		return true
	}
	return false
}
