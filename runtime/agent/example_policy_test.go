//go:build !wasip1

package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

func init() {
	// example.issues may read GitHub (the preset: read-only, the token from
	// the secret GITHUB_TOKEN) and nothing else.
	github, err := policy.New(policy.GitHub())
	if err != nil {
		panic(err)
	}
	agent.Register("example.issues", func(ctx *agent.Context, method string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, method, "https://api.github.com/repos/damperdev/damper/issues", nil)
		if err != nil {
			return "", err
		}
		resp, err := ctx.Fetch(req)
		var denied *policy.DenyError
		if errors.As(err, &denied) {
			// Never sent. The reason is stable text to branch on.
			return "denied: " + string(denied.Decision.Reason), nil
		}
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		return resp.Status, nil
	}, agent.WithPolicy(github))
}

func ExampleWithPolicy() {
	h := agenttest.New()
	defer h.Close()
	// Tests point the preset at a test origin, as DAMPER_TARGETS does on
	// the hosts: the agent's requests to https://api.github.com go there.
	// Secrets get made-up values.
	h.Targets = map[string]string{"github": "https://github.test"}
	h.Secrets = map[string]string{"GITHUB_TOKEN": "test-token"}
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "github.test" || r.Header.Get("Authorization") != "Bearer test-token" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
		}
	})

	for _, method := range []string{"GET", "POST"} {
		out, err := h.Run(context.Background(), "example.issues", "demo", method)
		fmt.Println(method, string(out), err)
	}
	for _, e := range h.Events() {
		fmt.Println(e.Type, string(e.Data))
	}
	// Output:
	// GET "200 OK" <nil>
	// POST "denied: deny-level" <nil>
	// policy.allow {"service":"github","rule":"","reason":"allow-level","method":"GET","url":"https://github.test/repos/damperdev/damper/issues"}
	// policy.deny {"service":"github","rule":"","reason":"deny-level","method":"POST","url":"https://github.test/repos/damperdev/damper/issues"}
}
