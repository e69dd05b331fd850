//go:build !wasip1

package triage_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/examples/triage"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

func toolStream(id, tool, input string) string {
	return "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":100,\"output_tokens\":1}}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"" + id + "\",\"name\":\"" + tool + "\",\"input\":{}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":" + fmt.Sprintf("%q", input) + "}}\n\n" +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":20}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
}

// BenchmarkTurnNative is the harness loop natively (agenttest, SQLite in
// memory), the model answered at once: the cost of the loop's Go code,
// against which the module's (local's BenchmarkHarnessTurn) compares.
func BenchmarkTurnNative(b *testing.B) {
	h := agenttest.New()
	defer h.Close()
	h.Model = "anthropic/claude-sonnet-4-5"
	h.Targets = map[string]string{"anthropic": "http://memory.test"}
	h.Secrets = map[string]string{"ANTHROPIC_API_KEY": "fake-key"}
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n := bytes.Count(body, []byte(`"tool_result"`))
		turns := 1
		if bytes.Contains(body, []byte("nine turns")) {
			turns = 9
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if n+1 < turns {
			io.WriteString(w, toolStream(fmt.Sprintf("toolu_%d", n), "past", `{"query":"crash"}`))
			return
		}
		io.WriteString(w, toolStream("toolu_f", "finish", `{"label":"bug","priority":1,"summary":"s"}`))
	})
	i := 0
	runTurns := func(body string) time.Duration {
		i++
		start := time.Now()
		_, err := h.Run(b.Context(), "triage", fmt.Sprintf("bench-%d", i), triage.Issue{Title: "t", Body: body})
		require.NoError(b, err)
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
