//go:build !wasip1

package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

func init() {
	// example.weather may read the weather API and nothing else. The API's
	// key is a secret the host adds to each allowed request: the agent
	// names it, and never sees it.
	weather, err := policy.New(policy.NewService("weather", "https://weather.example").
		Level(policy.AllowRead).
		Credential("Authorization", "Bearer ${secret:WEATHER_KEY}"))
	if err != nil {
		panic(err)
	}
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
	}, agent.WithPolicy(weather))
}

func ExampleContext_Fetch() {
	h := agenttest.New()
	defer h.Close()
	// The test host fills in secrets from Secrets, as the hosts do from
	// their environment, and answers fetches with a handler: no network.
	h.Secrets = map[string]string{"WEATHER_KEY": "test-key"}
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer test-key" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "sunny in %s", r.URL.Path[len("/v1/"):])
	})

	out, err := h.Run(context.Background(), "example.weather", "demo", "Lisbon")
	fmt.Println(string(out), err)
	// Output: "sunny in Lisbon" <nil>
}
