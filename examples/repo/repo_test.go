//go:build !wasip1

package repo_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/examples/repo"
	"github.com/damperdev/damper/runtime/agent/agenttest"
)

// TestRepo runs the agent natively against a fake GitHub, the way an agent
// author tests one: the preset is pointed at the fake, the token is made up.
func TestRepo(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []string
	)
	h := agenttest.New()
	defer h.Close()
	h.Targets = map[string]string{"github": "https://github.test"}
	h.Secrets = map[string]string{"GITHUB_TOKEN": "made-up-token"}
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.Host+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if !strings.EqualFold(r.URL.Path, "/repos/damperdev/damper") {
			http.NotFound(w, r)
			return
		}
		// An API that echoes the credential: the agent must not see it.
		fmt.Fprintf(w, `{"full_name":"damperdev/damper","description":"token %s","stargazers_count":7}`, r.Header.Get("Authorization"))
	})

	run := func(payload string) (repo.Output, error) {
		out, err := h.Run(t.Context(), "repo", "r1", json.RawMessage(payload))
		var o repo.Output
		if err == nil {
			require.NoError(t, json.Unmarshal(out, &o))
		}
		return o, err
	}

	out, err := run(`{"owner":"DamperDev","repo":"damper","star":true}`)
	require.NoError(t, err)
	assert.Equal(t, repo.Output{
		FullName:    "damperdev/damper",
		Description: "token Bearer [REDACTED:GITHUB_TOKEN]",
		Stars:       7,
		StarDenied:  "deny-level",
	}, out)
	assert.Equal(t, []string{"GET github.test/repos/DamperDev/damper Bearer made-up-token"}, calls, "the star was sent")

	_, err = run(`{"owner":"damperdev","repo":"nope"}`)
	assert.ErrorContains(t, err, "404")

	_, err = run(`{"owner":"damperdev"}`)
	var e *agenttest.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 400, e.Status, "a payload without a field of Input is refused before the handler runs")

	_, err = run(`{"owner":"damperdev","repo":""}`)
	assert.ErrorContains(t, err, "owner and repo are required")
}
