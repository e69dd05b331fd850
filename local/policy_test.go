package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/damperdev/damper/internal/hosttest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// policyFakes are the loopback servers of probe.policy's services (api,
// other) and a host no service has (evil).
type policyFakes struct {
	secret           string
	api, other, evil *hosttest.Recorder
}

func newPolicyFakes(t *testing.T) *policyFakes {
	f := &policyFakes{secret: hosttest.FakeSecret(t)}
	f.evil = hosttest.NewRecorder(t, nil)
	f.other = hosttest.NewRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "other %s auth=%q", r.URL.Path, r.Header.Get("Authorization"))
	})
	f.api = hosttest.NewRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.secret {
			http.Error(w, "no credential", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/allowed/echo":
			hosttest.EchoSecret(f.secret, 5)(w, r)
		case "/allowed/evil":
			http.Redirect(w, r, f.evil.URL+"/steal", http.StatusFound)
		case "/redirect-out":
			http.Redirect(w, r, f.other.URL+"/landing", http.StatusFound)
		default:
			fmt.Fprintf(w, "api %s", r.URL.Path)
		}
	})
	return f
}

// config points probe.policy's services at the fakes and gives the secret.
func (f *policyFakes) config(t *testing.T) Config {
	return testConfig(t).
		WithTargets(map[string]string{"api": f.api.URL, "other": f.other.URL}).
		WithSecrets(func(name string) (string, bool) {
			if name == "PROBE_API_TOKEN" {
				return f.secret, true
			}
			return "", false
		})
}

// eventLog collects the events of runs.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) option() RunOption {
	return OnEvent(func(e Event) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.events = append(l.events, e)
	})
}

// last returns the last policy decision's event.
func (l *eventLog) last() Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.events) - 1; i >= 0; i-- {
		if strings.HasPrefix(string(l.events[i].Type), "policy.") {
			return l.events[i]
		}
	}
	return Event{}
}

func runProbe(t *testing.T, h *Host, agent, id string, in map[string]any, log *eventLog) map[string]any {
	t.Helper()
	res, err := h.Run(context.Background(), agent, id, mustJSON(t, in), log.option())
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(res.Result, &out))
	return out
}

func TestPolicyIsEnforcedOnTheLocalHost(t *testing.T) {
	f := newPolicyFakes(t)
	h := newHost(t, f.config(t))
	log := &eventLog{}
	for _, tc := range []struct {
		name string
		in   map[string]any
		// the answer: status and body, or a denial's reason
		status int
		body   string
		reason string
		// the fake that must not have been reached
		untouched *hosttest.Recorder
		event     string
	}{
		{name: "allowed, with the credential injected", in: map[string]any{"url": f.api.URL + "/allowed/x"},
			status: 200, body: "api /allowed/x", event: "policy.allow"},
		{name: "the policy's own origin for the service goes to the override", in: map[string]any{"url": "http://127.0.0.1:9/allowed/y"},
			status: 200, body: "api /allowed/y", event: "policy.allow"},
		{name: "denied: never sent", in: map[string]any{"method": "DELETE", "url": f.api.URL + "/allowed/x"},
			reason: "deny-level", untouched: f.api, event: "policy.deny"},
		{name: "a host no service has", in: map[string]any{"url": f.evil.URL + "/"},
			reason: "ip-literal", untouched: f.evil, event: "policy.deny"},
		{name: "a placeholder smuggled in a header", in: map[string]any{"url": f.other.URL + "/x", "headers": map[string]string{"X-Smuggle": "${secret:PROBE_API_TOKEN}"}},
			reason: "placeholder", untouched: f.other, event: "policy.deny"},
		{name: "a redirect to a host no service has", in: map[string]any{"url": f.api.URL + "/allowed/evil"},
			reason: "ip-literal", untouched: f.evil, event: "policy.deny"},
		{name: "a redirect to another service: its credential stays behind", in: map[string]any{"url": f.api.URL + "/redirect-out"},
			status: 200, body: `other /landing auth=""`, event: "policy.allow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before int
			if tc.untouched != nil {
				before = len(tc.untouched.Requests())
			}
			out := runProbe(t, h, "probe.policy", "enforce", tc.in, log)
			if tc.reason != "" {
				assert.Equal(t, true, out["denied"], "%v", out)
				assert.Equal(t, tc.reason, out["reason"])
				assert.Len(t, tc.untouched.Requests(), before, "the request never left")
			} else {
				assert.Equal(t, false, out["denied"], "%v", out)
				assert.EqualValues(t, tc.status, out["status"])
				assert.Equal(t, tc.body, out["body"])
			}
			e := log.last()
			assert.EqualValues(t, tc.event, e.Type)
			var data map[string]any
			require.NoError(t, json.Unmarshal(e.Data, &data))
			if tc.reason != "" {
				assert.Equal(t, tc.reason, data["reason"])
			}
		})
	}

	t.Run("the response never holds the secret", func(t *testing.T) {
		out := runProbe(t, h, "probe.policy", "enforce", map[string]any{"url": f.api.URL + "/allowed/echo"}, log)
		raw, err := json.Marshal(out)
		require.NoError(t, err)
		require.EqualValues(t, 200, out["status"])
		for _, e := range hosttest.Encodings(f.secret) {
			assert.NotContains(t, string(raw), e)
		}
		assert.Contains(t, out["body"], "[REDACTED:PROBE_API_TOKEN]")
		assert.Equal(t, []any{"Bearer [REDACTED:PROBE_API_TOKEN]"}, out["headers"].(map[string]any)["X-Echo"])
	})

	t.Run("no event holds it", func(t *testing.T) {
		log.mu.Lock()
		defer log.mu.Unlock()
		require.NotEmpty(t, log.events)
		for _, ev := range log.events {
			for _, e := range hosttest.Encodings(f.secret) {
				assert.NotContains(t, string(ev.Data), e)
			}
		}
	})
}

func TestPolicyLimitHoldsAcrossRunsAndRestarts(t *testing.T) {
	f := newPolicyFakes(t)
	cfg := f.config(t)
	log := &eventLog{}
	limited := map[string]any{"url": f.api.URL + "/limited"}

	h := newHost(t, cfg)
	for i, denied := range []bool{false, false, true} {
		out := runProbe(t, h, "probe.policy", "lim", limited, log)
		assert.Equal(t, denied, out["denied"], "run %d: %v", i+1, out)
	}
	assert.Equal(t, "limited", runProbe(t, h, "probe.policy", "lim", limited, log)["rule"])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, h.Close(ctx))

	// A new host process on the same data: the count is stored state.
	h = newHost(t, cfg)
	out := runProbe(t, h, "probe.policy", "lim", limited, log)
	assert.Equal(t, true, out["denied"])
	assert.Equal(t, "limit", out["reason"])
	assert.Equal(t, false, runProbe(t, h, "probe.policy", "other-instance", limited, log)["denied"])
	assert.Len(t, f.api.Requests(), 3)
}

func TestReportModeSendsAndReportsTheWouldBeDenial(t *testing.T) {
	f := newPolicyFakes(t)
	h := newHost(t, f.config(t))
	log := &eventLog{}
	out := runProbe(t, h, "probe.report", "r", map[string]any{"method": "DELETE", "url": f.api.URL + "/allowed/x"}, log)
	assert.Equal(t, false, out["denied"])
	assert.EqualValues(t, 200, out["status"])
	require.Len(t, f.api.Requests(), 1, "sent")
	assert.Equal(t, "Bearer "+f.secret, f.api.Requests()[0].Header.Get("Authorization"))

	e := log.last()
	assert.EqualValues(t, "policy.report", e.Type)
	var data map[string]any
	require.NoError(t, json.Unmarshal(e.Data, &data))
	assert.Equal(t, map[string]any{
		"service": "api", "rule": "", "reason": "deny-level", "method": "DELETE",
		"url": f.api.URL + "/allowed/x",
	}, data)
	assert.False(t, strings.Contains(string(e.Data), f.secret))
}
