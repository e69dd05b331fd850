//go:build !wasip1

package agent_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/internal/guest"
)

func init() {
	p, err := policy.New(policy.NewService("api", "https://api.example.com").Level(policy.AllowRead).
		Credential("Authorization", "Bearer ${secret:BENCH_TOKEN}"))
	if err != nil {
		panic(err)
	}
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
	}, agent.WithPolicy(p))
}

// BenchmarkFetchRoundTrip is one ctx.Fetch round trip through the module's
// entry points: the resume carrying a fetch's result (and its policy.allow
// event's), the handler's next request, decided by the policy, the batch
// holding it and its event. Run it under wasm for real timings (Go's
// allocator and encoding/json are several times slower there); here it
// counts allocations.
func BenchmarkFetchRoundTrip(b *testing.B) {
	// Past the run's bookkeeping (migrations, the run's row) to its first
	// fetch, answering sql effects with empty results.
	out := guest.Start([]byte(`{"task":"bench","kind":"run","agent":"bench.fetch","instance":"b","run":"r_bench"}`))
	var first uint64 // the id of the first effect of the first batch with the fetch
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
		first = o.Effects[0].ID
		if o.Effects[0].Type != "sql" {
			break
		}
		// Every statement answers one row [2]: the schema is current.
		results := strings.Repeat(`{"columns":["v"],"rows":[[2]]},`, len(o.Effects[0].Args.Statements))
		value := `{"results":[` + strings.TrimSuffix(results, ",") + `]}`
		out = guest.Resume(fmt.Appendf(nil, `{"task":"bench","results":[{"id":%d,"value":%s}]}`, first, value))
	}
	// Each batch is the fetch and its policy.allow event, in either order
	// (two goroutines issue them): inputs[i][k] answers batch i with the
	// fetch as its k-th effect.
	const fetched = `{"status":200,"headers":[["content-type","application/json"]],"body":"eyJvayI6dHJ1ZX0="}`
	inputs := make([][2][]byte, b.N)
	for i := range inputs {
		n := first + 2*uint64(i)
		inputs[i][0] = fmt.Appendf(nil, `{"task":"bench","results":[{"id":%d,"value":%s},{"id":%d,"value":{}}]}`, n, fetched, n+1)
		inputs[i][1] = fmt.Appendf(nil, `{"task":"bench","results":[{"id":%d,"value":{}},{"id":%d,"value":%s}]}`, n, n+1, fetched)
	}
	fetch, emit := []byte(`"type":"fetch"`), []byte(`"type":"emit"`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := 0
		if bytes.Index(out, emit) < bytes.Index(out, fetch) {
			k = 1
		}
		out = guest.Resume(inputs[i][k])
	}
	b.StopTimer()
	if !bytes.Contains(out, fetch) {
		b.Fatalf("the last batch is not a fetch: %s", out)
	}
	guest.Cancel([]byte(`{"task":"bench"}`))
}
