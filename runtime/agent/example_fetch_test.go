//go:build !wasip1

package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

func init() {
	agent.Register("example.weather", func(ctx *agent.Context, city string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://weather.example/v1/"+city, nil)
		if err != nil {
			return "", err
		}
		resp, err := ctx.Fetch(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	})
}

func ExampleContext_Fetch() {
	h := agenttest.New()
	defer h.Close()
	// The test host answers fetches with a handler: no network.
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sunny in %s", r.URL.Path[len("/v1/"):])
	})

	out, err := h.Run(context.Background(), "example.weather", "demo", "Lisbon")
	fmt.Println(string(out), err)
	// Output: "sunny in Lisbon" <nil>
}
