//go:build !wasip1

package agent_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/internal/guest"
)

func init() {
	agent.Register("bench.fetch", func(ctx *agent.Context, _ struct{}) (struct{}, error) {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/v1/items?page=2", nil)
			if err != nil {
				return struct{}{}, err
			}
			resp, err := ctx.Fetch(req)
			if err != nil {
				return struct{}{}, nil // canceled: the benchmark is over
			}
			resp.Body.Close()
		}
	})
}

// BenchmarkFetchRoundTrip is one ctx.Fetch round trip through the module's
// entry points: the resume carrying a fetch's result, the handler's next
// request, the batch holding it. Run it under wasm for real timings
// (Go's allocator and encoding/json are several times slower there); here
// it counts allocations.
func BenchmarkFetchRoundTrip(b *testing.B) {
	// Past the run's bookkeeping (migrations, the run's row) to its first
	// fetch, answering sql effects with empty results.
	out := guest.Start([]byte(`{"task":"bench","kind":"run","agent":"bench.fetch","instance":"b","run":"r_bench"}`))
	var id uint64
	for {
		var o struct {
			Effects []struct {
				ID   uint64 `json:"id"`
				Type string `json:"type"`
				Args struct {
					Statements []any `json:"statements"`
				} `json:"args"`
			} `json:"effects"`
		}
		if err := json.Unmarshal(out, &o); err != nil || len(o.Effects) == 0 {
			b.Fatalf("output %s: %v", out, err)
		}
		id = o.Effects[0].ID
		if o.Effects[0].Type == "fetch" {
			break
		}
		// Every statement answers one row [1]: schema version 1, current.
		results := strings.Repeat(`{"columns":["v"],"rows":[[1]]},`, len(o.Effects[0].Args.Statements))
		value := `{"results":[` + strings.TrimSuffix(results, ",") + `]}`
		out = guest.Resume(fmt.Appendf(nil, `{"task":"bench","results":[{"id":%d,"value":%s}]}`, id, value))
	}
	inputs := make([][]byte, b.N)
	for i := range inputs {
		inputs[i] = fmt.Appendf(nil, `{"task":"bench","results":[{"id":%d,"value":{"status":200,"headers":[["content-type","application/json"]],"body":"eyJvayI6dHJ1ZX0="}}]}`, id+uint64(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		guest.Resume(inputs[i])
	}
	b.StopTimer()
	guest.Cancel([]byte(`{"task":"bench"}`))
}
