package local

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// anthropicStream is a Messages API stream of n text deltas.
func anthropicStream(n int) string {
	var b strings.Builder
	b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":100,\"output_tokens\":1}}}\n\n")
	b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for i := range n {
		fmt.Fprintf(&b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"word%d \"}}\n\n", i)
	}
	b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":50}}\n\n")
	b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	return b.String()
}

// BenchmarkModelTurn is one Anthropic turn inside the module under wazero
// (probe.model): the request encoded, decided by the policy and sent, the
// stream answered from memory and read through read effects, each event
// decoded, the deltas collected. No network and no model latency: what
// the module and the host add to a turn. The sub-benchmarks differ in the
// number of text deltas streamed.
func BenchmarkModelTurn(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("deltas=%d", n), func(b *testing.B) {
			stream := anthropicStream(n)
			fetcher := roundTripFunc(func(*http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
					Body: io.NopCloser(strings.NewReader(stream))}, nil
			})
			cfg := testConfig(b).WithLogger(nil).WithTransport(fetcher).
				WithTargets(map[string]string{"anthropic": "http://memory"}).
				WithSecrets(func(string) (string, bool) { return "fake-anthropic-key-bench", true })
			h := newHost(b, cfg)
			payload := map[string]any{"model": "anthropic/claude-sonnet-4-5",
				"request": json.RawMessage(`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`)}
			out := run(b, h, "probe.model", "bench", payload) // instantiate
			require.Nil(b, out["error"], "%v", out)
			b.ResetTimer()
			for b.Loop() {
				run(b, h, "probe.model", "bench", payload)
			}
		})
	}
}
