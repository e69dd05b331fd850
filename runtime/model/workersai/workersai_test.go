//go:build !wasip1

package workersai_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/model"
	"github.com/damperdev/damper/tests/agents"
	"github.com/damperdev/damper/tests/fakeproviders"
)

// TestRESTFallback runs a turn of workers-ai through probe.model: a binding
// effect, which a host without Workers bindings performs by sending the
// request to the REST API, here a fake of its OpenAI-compatible endpoint.
func TestRESTFallback(t *testing.T) {
	fake := fakeproviders.NewOpenAICompatible(t, "fake-cloudflare-token", agents.CompatPrefix)
	h := agenttest.New()
	defer h.Close()
	h.HTTP = fake
	h.Targets = map[string]string{"workers-ai": fake.URL()}
	h.Secrets = map[string]string{"CLOUDFLARE_API_TOKEN": "fake-cloudflare-token"}
	var types []string
	h.OnBatch = func(b []agenttest.Effect) {
		for _, e := range b {
			types = append(types, e.Type)
		}
	}
	fake.Push(fakeproviders.Turn{Text: "Hello from Workers AI."})
	req, err := json.Marshal(model.Request{Messages: []model.Message{model.UserText("Hi")}})
	require.NoError(t, err)
	out, err := h.Run(t.Context(), "probe.model", "w", agents.ModelIn{Model: "workers-ai/@cf/meta/llama-3.3-70b-instruct-fp8-fast", Request: req})
	require.NoError(t, err)
	var mo agents.ModelOut
	require.NoError(t, json.Unmarshal(out, &mo))
	require.Nil(t, mo.Error, "%+v", mo.Error)
	assert.Equal(t, "Hello from Workers AI.", mo.Response.Message.Text())
	assert.Equal(t, "workers-ai", mo.Response.Provider)
	assert.Contains(t, types, "binding")
	assert.NotContains(t, types, "fetch", "the request went as a binding call")
	sent := fake.Requests()
	require.Len(t, sent, 1)
	assert.Equal(t, "Bearer fake-cloudflare-token", sent[0].Header.Get("Authorization"))
	assert.Equal(t, "@cf/meta/llama-3.3-70b-instruct-fp8-fast", sent[0].JSON()["model"])
}

// TestDenied: without the service in its policy, an agent's workers-ai
// turn is denied before anything is sent, as a fetch would be.
func TestDenied(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	req, err := json.Marshal(model.Request{Messages: []model.Message{model.UserText("Hi")}})
	require.NoError(t, err)
	out, err := h.Run(t.Context(), "probe.model.nopolicy", "w", agents.ModelIn{Model: "workers-ai/@cf/x", Request: req})
	require.NoError(t, err)
	var mo agents.ModelOut
	require.NoError(t, json.Unmarshal(out, &mo))
	require.NotNil(t, mo.Error)
	assert.Equal(t, "denied", mo.Error.Kind)
}
