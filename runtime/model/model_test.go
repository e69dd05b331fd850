package model

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sleeper is an Env that records its sleeps (a unit test of the retry
// loop; providers are tested against fake servers in their packages).
type sleeper struct {
	slept []time.Duration
	fail  error
}

func (s *sleeper) Sleep(d time.Duration) error {
	s.slept = append(s.slept, d)
	return s.fail
}

// script answers with errs in turn, then a response.
type script struct {
	errs  []error
	calls int
}

func (s *script) Turn(context.Context, *Request, func(Delta)) (*Response, error) {
	s.calls++
	if s.calls <= len(s.errs) {
		return nil, s.errs[s.calls-1]
	}
	return &Response{StopReason: StopEndTurn}, nil
}

func TestRetrying(t *testing.T) {
	overloaded := &Error{Kind: KindOverloaded}
	tests := []struct {
		name    string
		policy  RetryPolicy
		errs    []error
		ok      bool
		calls   int
		waits   []time.Duration // exact, or nil to check bounds
		minWait []time.Duration
	}{
		{"success at once", RetryPolicy{}, nil, true, 1, []time.Duration{}, nil},
		{"retry-after honoured", RetryPolicy{}, []error{&Error{Kind: KindRateLimited, RetryAfter: 5 * time.Second}}, true, 2, []time.Duration{5 * time.Second}, nil},
		{"backoff from the base", RetryPolicy{}, []error{overloaded, overloaded, overloaded}, true, 4, nil, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{"attempts capped", RetryPolicy{}, []error{overloaded, overloaded, overloaded, overloaded}, false, 4, nil, []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{"custom count and base", RetryPolicy{MaxRetries: 1, Base: time.Second}, []error{overloaded, overloaded}, false, 2, nil, []time.Duration{time.Second}},
		{"no retries", RetryPolicy{MaxRetries: -1}, []error{overloaded}, false, 1, []time.Duration{}, nil},
		{"delay capped", RetryPolicy{MaxRetries: 5, Base: 10 * time.Second, MaxDelay: 15 * time.Second, MaxWait: time.Hour},
			[]error{overloaded, overloaded, overloaded}, true, 4, nil, []time.Duration{10 * time.Second, 15 * time.Second, 15 * time.Second}},
		{"total wait capped", RetryPolicy{MaxWait: 10 * time.Second}, []error{overloaded, overloaded, overloaded}, false, 3, nil, []time.Duration{2 * time.Second, 4 * time.Second}},
		{"retry-after past the budget", RetryPolicy{}, []error{&Error{Kind: KindRateLimited, RetryAfter: time.Hour}}, false, 1, []time.Duration{}, nil},
		{"not retryable", RetryPolicy{}, []error{&Error{Kind: KindInvalidRequest}}, false, 1, []time.Duration{}, nil},
		{"not a model error", RetryPolicy{}, []error{errors.New("plain")}, false, 1, []time.Duration{}, nil},
		{"wrapped model error", RetryPolicy{}, []error{wrap(overloaded)}, true, 2, nil, []time.Duration{2 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := &sleeper{slept: []time.Duration{}}
			s := &script{errs: tc.errs}
			var retries []Delta
			m := &retrying{m: s, env: env, policy: tc.policy.normalized()}
			resp, err := m.Turn(context.Background(), &Request{}, func(d Delta) {
				if d.Type == DeltaRetry {
					retries = append(retries, d)
				}
			})
			assert.Equal(t, tc.ok, err == nil, "err %v", err)
			if tc.ok {
				require.NotNil(t, resp)
			} else {
				assert.Equal(t, tc.errs[s.calls-1], err, "the last error, as it was")
			}
			assert.Equal(t, tc.calls, s.calls)
			if tc.waits != nil {
				assert.Equal(t, tc.waits, env.slept)
			} else {
				require.Len(t, env.slept, len(tc.minWait))
				for i, w := range env.slept {
					assert.GreaterOrEqual(t, w, tc.minWait[i])
					assert.LessOrEqual(t, w, tc.minWait[i]*5/4, "jitter of at most a quarter")
					assert.Equal(t, w, w.Truncate(time.Millisecond))
				}
			}
			require.Len(t, retries, len(env.slept))
			for i, d := range retries {
				assert.Equal(t, i+2, d.Attempt)
				assert.Equal(t, env.slept[i], d.Wait)
				assert.Error(t, d.Err)
			}
		})
	}
}

func wrap(err error) error { return &wrapped{err} }

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestRetryStopsWhenTheRunIsCanceled(t *testing.T) {
	env := &sleeper{fail: context.Canceled}
	m := &retrying{m: &script{errs: []error{&Error{Kind: KindServer, Provider: "p"}}}, env: env, policy: DefaultRetryPolicy}
	_, err := m.Turn(context.Background(), &Request{}, nil)
	var me *Error
	require.ErrorAs(t, err, &me)
	assert.Equal(t, KindCanceled, me.Kind)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestRetryable(t *testing.T) {
	want := map[ErrorKind]bool{
		KindRateLimited: true, KindOverloaded: true, KindServer: true, KindTimeout: true, KindConnection: true, KindBadResponse: true,
		KindAuth: false, KindInvalidRequest: false, KindContextOverflow: false, KindDenied: false, KindCanceled: false,
	}
	for kind, retryable := range want {
		assert.Equal(t, retryable, (&Error{Kind: kind}).Retryable(), kind)
	}
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Kind: KindRateLimited, Provider: "anthropic", Status: 429, Type: "rate_limit_error", Message: "slow down", RequestID: "req_1"}
	assert.Equal(t, "anthropic: rate_limited (429 rate_limit_error): slow down (request req_1)", e.Error())
	e = &Error{Kind: KindConnection, Provider: "openai", Message: "the request failed", Err: errors.New("fetch_error: connection reset")}
	assert.Equal(t, "openai: connection: the request failed: fetch_error: connection reset", e.Error())
}

func TestPriceOf(t *testing.T) {
	for name, want := range map[string]Price{
		"anthropic/claude-sonnet-4-5":          {3, 15, 0.30, 3.75},
		"anthropic/claude-sonnet-4-5-20250929": {3, 15, 0.30, 3.75},
		"anthropic/claude-3-5-haiku-latest":    {0.80, 4, 0.08, 1},
		"openai/gpt-4.1-2025-04-14":            {2, 8, 0.50, 0},
		"openai/gpt-4.1-mini":                  {0.40, 1.60, 0.10, 0},
		"openai/gpt-4o-2024-08-06":             {2.50, 10, 1.25, 0},
	} {
		p, ok := PriceOf(name)
		assert.True(t, ok, name)
		assert.Equal(t, want, p, name)
	}
	for _, name := range []string{"openai/gpt-4.1-mega", "anthropic/claude-sonnet-4-5-2025", "test/schema", "gpt-4.1"} {
		_, ok := PriceOf(name)
		assert.False(t, ok, name)
	}
}

func TestSetPrice(t *testing.T) {
	SetPrice("example/model-x", Price{Input: 1, Output: 2})
	SetPrice("openai/gpt-4.1", Price{Input: 1.5, Output: 6})
	t.Cleanup(func() {
		overridesMu.Lock()
		delete(overrides, "example/model-x")
		delete(overrides, "openai/gpt-4.1")
		overridesMu.Unlock()
	})
	p, ok := PriceOf("example/model-x-20260101")
	require.True(t, ok)
	assert.Equal(t, Price{Input: 1, Output: 2}, p)
	r := &Response{Provider: "openai", Model: "gpt-4.1-2025-04-14", Usage: Usage{InputTokens: 1_000_000, OutputTokens: 500_000}}
	cost, ok := r.Cost()
	require.True(t, ok)
	assert.InDelta(t, 1.5+3, cost, 1e-9)
}

func TestUsage(t *testing.T) {
	u := Usage{InputTokens: 1, OutputTokens: 2, CacheReadTokens: 3, CacheWriteTokens: 4}
	u.Add(Usage{InputTokens: 10, OutputTokens: 20, CacheReadTokens: 30, CacheWriteTokens: 40})
	assert.Equal(t, Usage{InputTokens: 11, OutputTokens: 22, CacheReadTokens: 33, CacheWriteTokens: 44}, u)
	assert.Equal(t, int64(88), u.PromptTokens())
	assert.InDelta(t, (11*3+22*15+33*0.3+44*3.75)/1e6, Price{3, 15, 0.3, 3.75}.Cost(u), 1e-12)
}

var registerUnit sync.Once // the registry is the process's: once, whatever -count says

func TestOpen(t *testing.T) {
	registerUnit.Do(func() {
		Register("unit", func(id string, env Env) (Model, error) {
			if id == "broken" {
				return nil, errors.New("no such model")
			}
			return &script{}, nil
		})
	})
	env := &sleeper{}
	m, err := Open("unit/x", env)
	require.NoError(t, err)
	resp, err := m.Turn(context.Background(), &Request{}, nil)
	require.NoError(t, err)
	assert.Equal(t, StopEndTurn, resp.StopReason)

	_, err = Open("unit/broken", env)
	assert.EqualError(t, err, `model "unit/broken": no such model`)
	_, err = Open("nobody/x", env)
	assert.ErrorContains(t, err, `no provider "nobody" (registered: `)
	assert.ErrorContains(t, err, "unit")
	assert.ErrorContains(t, err, "register it with model.Register")
	// A provider of damper's names the package that links it.
	for provider, hint := range map[string]string{
		"anthropic":  `_ "github.com/damperdev/damper/runtime/model/anthropic"`,
		"openai":     `_ "github.com/damperdev/damper/runtime/model/openai"`,
		"test":       `_ "github.com/damperdev/damper/runtime/model/modeltest"`,
		"workers-ai": "workersai.Register(accountID)",
	} {
		if _, linked := registry[provider]; linked {
			continue
		}
		_, err = Open(provider+"/x", env)
		assert.ErrorContains(t, err, hint, provider)
	}
	for _, bad := range []string{"", "unit", "unit/", "/x"} {
		_, err = Open(bad, env)
		assert.ErrorContains(t, err, "want provider/model", bad)
	}
	_, err = Open("unit/x", nil)
	assert.Error(t, err)
	assert.Panics(t, func() { Register("unit", func(string, Env) (Model, error) { return nil, nil }) })
	assert.Panics(t, func() { Register("a/b", func(string, Env) (Model, error) { return nil, nil }) })
}

func TestMessageHelpers(t *testing.T) {
	m := Message{Role: RoleAssistant, Content: []Part{Text("a"), ToolUse("1", "t", nil), {Type: PartThinking, Text: "x"}, Text("b")}}
	assert.Equal(t, "ab", m.Text())
	calls := m.ToolUses()
	require.Len(t, calls, 1)
	assert.Equal(t, `{}`, string(calls[0].Input))
}
