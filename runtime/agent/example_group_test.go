//go:build !wasip1

package agent_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

func init() {
	// example.status may read the example.test hosts.
	sites, err := policy.New(policy.NewService("sites", "https://a.example.test").
		Hosts("*.example.test").
		Level(policy.AllowRead))
	if err != nil {
		panic(err)
	}
	// example.status fetches every URL at once: the host receives the
	// fetches in one batch and performs them concurrently.
	agent.Register("example.status", func(ctx *agent.Context, urls []string) ([]int, error) {
		statuses := make([]int, len(urls))
		g := ctx.Group()
		for i, u := range urls {
			g.Go(func() error {
				req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
				if err != nil {
					return err
				}
				resp, err := ctx.Fetch(req)
				if err != nil {
					return err
				}
				statuses[i] = resp.StatusCode
				return nil
			})
		}
		return statuses, g.Wait()
	}, agent.WithPolicy(sites))
}

func ExampleGroup() {
	h := agenttest.New()
	defer h.Close()
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			w.WriteHeader(http.StatusNotFound)
		}
	})
	h.OnBatch = func(batch []agenttest.Effect) {
		fetches := 0
		for _, e := range batch {
			if e.Type == "fetch" {
				fetches++
			}
		}
		if fetches > 0 {
			fmt.Println("one batch of", fetches, "fetches")
		}
	}

	out, err := h.Run(context.Background(), "example.status", "demo", []string{"https://a.example.test/", "https://b.example.test/missing", "https://c.example.test/"})
	fmt.Println(string(out), err)
	// Output:
	// one batch of 3 fetches
	// [200,404,200] <nil>
}
