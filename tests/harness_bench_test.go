package tests

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/tests/fakeproviders"
)

// BenchmarkHarnessTurn is the harness loop's cost per model turn on each
// host, without model latency: the triage agent over HTTP, its model the
// fake Anthropic API on loopback answering at once (each stream in one
// write). Each op is two runs on fresh agent
// instances, one of 1 turn (finish) and one of 9 (8 past calls, then
// finish); the difference over 8 is one turn: the request encoded and
// sent, the stream read and decoded, the turn stored, the tool run and its
// result stored, the events, and the host's side of each effect. A run's
// fixed costs (its record, the schema check, the sandbox, the session's
// load) cancel out; they are in ms/run.
func BenchmarkHarnessTurn(b *testing.B) {
	fake := fakeproviders.NewAnthropic(b, fakeAnthropicKey)
	env := map[string]string{"DAMPER_TARGETS": "anthropic=" + fake.URL(), "ANTHROPIC_API_KEY": fakeAnthropicKey, "DAMPER_MODEL": hostModel}
	hosts := []struct {
		name  string
		start func(testing.TB) host
	}{
		{"local", func(tb testing.TB) host { return startLocal(tb, token, env) }},
		{"workers", func(tb testing.TB) host { return startWorker(tb, token, env) }},
	}
	for _, hc := range hosts {
		b.Run(hc.name, func(b *testing.B) {
			h := hc.start(b)
			n := 0
			runTurns := func(turns int) time.Duration {
				n++
				for i := 1; i < turns; i++ {
					fake.Push(fakeproviders.Turn{Whole: true, ToolCalls: []fakeproviders.ToolCall{{ID: fmt.Sprintf("toolu_b%d_%d", n, i), Name: "past", Input: `{"query":"crash"}`}}})
				}
				fake.Push(fakeproviders.Turn{Whole: true, ToolCalls: []fakeproviders.ToolCall{{ID: fmt.Sprintf("toolu_b%d_f", n), Name: "finish", Input: validTriage}}})
				req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/agents/triage/bench-%s-%d", h.URL(), hc.name, n), strings.NewReader(issue))
				require.NoError(b, err)
				req.Header.Set("Authorization", "Bearer "+token)
				start := time.Now()
				resp, err := http.DefaultClient.Do(req)
				elapsed := time.Since(start)
				require.NoError(b, err)
				resp.Body.Close()
				require.Equal(b, http.StatusOK, resp.StatusCode)
				require.Zero(b, fake.Pending())
				return elapsed
			}
			runTurns(1) // the module instance, compiled code, caches
			var one, nine time.Duration
			b.ResetTimer()
			for b.Loop() {
				one += runTurns(1)
				nine += runTurns(9)
			}
			b.ReportMetric(float64((nine-one)/time.Duration(b.N))/8/1e6, "ms/turn")
			b.ReportMetric(float64(one/time.Duration(b.N))/1e6, "ms/run")
		})
	}
}
