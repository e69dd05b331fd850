package provider

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRetryAfter(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After": {"0"}}, 0},
		{http.Header{"Retry-After": {"-3"}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After": {"Wed, 21 Oct 2015 07:28:00 GMT"}}, 0}, // past
		{http.Header{}, 0},
	} {
		assert.Equal(t, tc.want, RetryAfter(tc.h), "%v", tc.h)
	}
	d := RetryAfter(http.Header{"Retry-After": {date}})
	assert.Greater(t, d, 80*time.Second, "an HTTP date")
	assert.LessOrEqual(t, d, 90*time.Second)
}

func TestKindOfStatus(t *testing.T) {
	for status, want := range map[int]string{
		400: "invalid_request", 401: "auth", 403: "auth", 404: "invalid_request", 408: "timeout", 413: "context_overflow",
		422: "invalid_request", 429: "rate_limited", 500: "server", 502: "server", 503: "overloaded", 504: "timeout", 529: "overloaded",
	} {
		assert.Equal(t, want, string(KindOfStatus(status)), status)
	}
}

func TestContextOverflow(t *testing.T) {
	for msg, want := range map[string]bool{
		"prompt is too long: 210000 tokens > 200000 maximum":                                  true,
		"input length and `max_tokens` exceed context limit: 190000 + 20000 > 200000":         true,
		"This model's maximum context length is 128000 tokens. However, you requested 130000": true,
		"tools.0.name: String should match pattern":                                           false,
	} {
		assert.Equal(t, want, ContextOverflow(msg), msg)
	}
}

func TestToolInput(t *testing.T) {
	assert.Equal(t, `{}`, string(ToolInput(nil)))
	assert.Equal(t, `{"a":1}`, string(ToolInput([]byte(` {"a":1} `))))
	assert.Equal(t, `"{\"a\":"`, string(ToolInput([]byte(`{"a":`))))
}
