package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunTimeout starts both hosts with DAMPER_RUN_TIMEOUT=4s: a run still
// going then is canceled in the module and answers 504 canceled, what it
// committed before stays, and the agent instance serves the next run.
func TestRunTimeout(t *testing.T) {
	env := map[string]string{"DAMPER_RUN_TIMEOUT": "4s"}
	forEachHost(t, token, env, func(t *testing.T, h host) {
		c := &client{h: h, token: token}
		// A first run creates the module instance and the storage, so the
		// timed run spends its time in its sleep, not in getting there.
		assert.Equal(t, "", c.run(t, "probe.slow", "deadline", `{"key":"k","read":true}`)["stored"])
		r := c.post(t, "probe.slow", "deadline", `{"key":"k","ms":3600000}`)
		require.Equal(t, http.StatusGatewayTimeout, r.status, "%s", r.body)
		assert.Equal(t, "canceled", r.errorType(t))
		assert.Contains(t, string(r.body), "run timeout (4s)")
		// Committed before the sleep; "after" was never stored.
		assert.Equal(t, "before", c.run(t, "probe.slow", "deadline", `{"key":"k","read":true}`)["stored"])
		// The agent instance takes runs again, and a run within the limit
		// finishes.
		assert.Equal(t, "after", c.run(t, "probe.slow", "deadline", `{"key":"k","ms":1}`)["stored"])
		assert.Equal(t, "after", c.run(t, "probe.slow", "deadline", `{"key":"k","read":true}`)["stored"])
	})
}

// TestClientDisconnect drops a synchronous run's connection while the run
// sleeps (after it has committed "before" and pinged the fake).
//
// Locally the request's context ends, the run is canceled in the module
// (damper_cancel) and the next run of the agent instance, queued behind it,
// finds "before": it was not blocked behind an hour's sleep.
//
// workerd under wrangler dev never learns that a client left (measured:
// neither the Worker's invocation nor request.signal ends, with or without
// enable_request_signal; docs/architecture.md), so there the run finishes
// and commits, and the instance serves the next run. In production the
// Worker's invocation is canceled, the Durable Object sees the stream the
// Worker held open end, and cancels the run (worker/cancel.test.mjs).
func TestClientDisconnect(t *testing.T) {
	fake := newFakeAPI(t)
	env := map[string]string{"DAMPER_TARGETS": "fake=" + fake.URL}
	forEachHost(t, token, env, func(t *testing.T, h host) {
		c := &client{h: h, token: token}
		_, onWorkers := h.(*workerHost)
		ms := 3_600_000
		if onWorkers {
			ms = 2000
		}
		ping := "/ping-" + strings.ReplaceAll(t.Name(), "/", "-")
		ctx, cancel := context.WithCancel(ctxFor(t))
		defer cancel()
		payload := fmt.Sprintf(`{"key":"k","ms":%d,"ping":%q}`, ms, fake.URL+ping)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL()+"/agents/probe.slow/gone", strings.NewReader(payload))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		done := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		// The run has committed "before" and reached its sleep once the
		// fake has seen its ping.
		for fake.hits(ping) == 0 {
			select {
			case err := <-done:
				t.Fatalf("the run ended before its ping: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)

		want := "before"
		if onWorkers {
			want = "after"
		}
		assert.Equal(t, want, c.run(t, "probe.slow", "gone", `{"key":"k","read":true}`)["stored"])
		assert.Equal(t, "after", c.run(t, "probe.slow", "gone", `{"key":"k","ms":1}`)["stored"])
	})
}
