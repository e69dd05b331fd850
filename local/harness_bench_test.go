package local

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// toolStream is a Messages API stream calling tool with input.
func toolStream(id, tool, input string) string {
	return "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":100,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"" + id + "\",\"name\":\"" + tool + "\",\"input\":{}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":" + fmt.Sprintf("%q", input) + "}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":20}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
}

// BenchmarkHarnessTurn is the harness loop inside the module under wazero,
// the model answered from memory: the triage agent, each op a run of 1
// turn and a run of 9 (8 calls of its past tool, then finish), on fresh
// agent instances. ms/turn is the difference over 8, with no network at
// all (tests' BenchmarkHarnessTurn has the fake on loopback, on both
// hosts).
func BenchmarkHarnessTurn(b *testing.B) {
	fetcher := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(r.Body)
		n := bytes.Count(body, []byte(`"tool_result"`))
		turns := 1
		if bytes.Contains(body, []byte("nine turns")) {
			turns = 9
		}
		var s string
		if n+1 < turns {
			s = toolStream(fmt.Sprintf("toolu_%d", n), "past", `{"query":"crash"}`)
		} else {
			s = toolStream("toolu_finish", "finish", `{"label":"bug","priority":1,"summary":"s"}`)
		}
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(strings.NewReader(s))}, nil
	})
	cfg := testConfig(b).WithLogger(nil).WithTransport(fetcher).WithModel("anthropic/claude-sonnet-4-5").
		WithTargets(map[string]string{"anthropic": "http://memory"}).
		WithSecrets(func(string) (string, bool) { return "fake-anthropic-key-bench", true })
	h := newHost(b, cfg)
	i := 0
	runTurns := func(body string) time.Duration {
		i++
		start := time.Now()
		out := run(b, h, "triage", fmt.Sprintf("bench-%d", i), map[string]string{"title": "t", "body": body})
		require.Equal(b, "bug", out["label"])
		return time.Since(start)
	}
	runTurns("one turn")
	var one, nine time.Duration
	b.ResetTimer()
	for b.Loop() {
		one += runTurns("one turn")
		nine += runTurns("nine turns")
	}
	b.ReportMetric(float64((nine-one)/time.Duration(b.N))/8/1e6, "ms/turn")
	b.ReportMetric(float64(one/time.Duration(b.N))/1e6, "ms/run")
}

// BenchmarkSessionsMemory is what sessions cost a module instance's
// memory: probe.sessions holds N sessions of one agent instance in one run,
// each with 10 prompts of 1 KB answered in kind (a 20 KB conversation),
// and reports the guest's Go heap and the linear memory after. Between
// runs a module instance keeps no session: each prompt loads its session
// from storage.
func BenchmarkSessionsMemory(b *testing.B) {
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("sessions=%d", n), func(b *testing.B) {
			h := newHost(b, testConfig(b).WithLogger(nil))
			var out map[string]any
			i := 0
			for b.Loop() {
				i++
				out = run(b, h, "probe.sessions", fmt.Sprintf("mem-%d", i), map[string]int{"n": n, "turns": 10, "bytes": 1024})
			}
			require.EqualValues(b, n*20, out["messages"])
			var mem uint32
			for _, ai := range h.instances {
				if ai.mi != nil {
					mem = max(mem, ai.mi.memorySize())
				}
			}
			b.ReportMetric(out["heap_alloc"].(float64)/(1<<20), "MiB-heap")
			b.ReportMetric(float64(mem)/(1<<20), "MiB-memory")
		})
	}
}
