//go:build !wasip1

package agents_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/tests/agents"
	"github.com/damperdev/damper/tests/effectcases"
)

// The probes' contracts, as the hosts' tests rely on them. probe.crash is
// not here: it kills the process it runs in.

func newHost(t *testing.T) *agenttest.Host {
	t.Helper()
	h := agenttest.New()
	// The probes' service, pointed at the test's handler's origin.
	h.Targets = map[string]string{"fake": "http://h"}
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return h
}

func run(t *testing.T, h *agenttest.Host, agent, payload string) string {
	t.Helper()
	out, err := h.Run(t.Context(), agent, "probe", json.RawMessage(payload))
	require.NoError(t, err)
	return string(out)
}

func TestState(t *testing.T) {
	h := newHost(t)
	for _, step := range []struct{ in, want string }{
		{`{"op":"get","key":"k"}`, `{"found":false,"value":null}`},
		{`{"op":"set","key":"k","value":{"big":12345678901234567890,"s":"x"}}`, `{"found":true,"value":{"big":12345678901234567890,"s":"x"}}`},
		{`{"op":"get","key":"k"}`, `{"found":true,"value":{"big":12345678901234567890,"s":"x"}}`},
		{`{"op":"del","key":"k"}`, `{"found":false,"value":null}`},
		{`{"op":"get","key":"k"}`, `{"found":false,"value":null}`},
	} {
		assert.JSONEq(t, step.want, run(t, h, "probe.state", step.in), step.in)
	}
}

func TestBatch(t *testing.T) {
	h := newHost(t)
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200 + len(r.URL.Path))
		io.WriteString(w, r.URL.Path)
	})
	var fetchBatches []int
	h.OnBatch = func(batch []agenttest.Effect) {
		fetches := 0
		for _, e := range batch {
			if e.Type == "fetch" {
				fetches++
			}
		}
		if fetches > 0 {
			fetchBatches = append(fetchBatches, fetches)
		}
	}
	out := run(t, h, "probe.batch", `{"urls":["http://h/a","http://h/bb","notaurl","http://h/dddd"]}`)
	assert.Equal(t, []int{3}, fetchBatches, "one batch with every fetch")
	var got struct {
		Responses []struct {
			Status int    `json:"status"`
			Body   string `json:"body"`
			Error  string `json:"error"`
		} `json:"responses"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got.Responses, 4)
	assert.Equal(t, 202, got.Responses[0].Status)
	assert.Equal(t, "/a", got.Responses[0].Body)
	assert.Equal(t, 203, got.Responses[1].Status)
	assert.Contains(t, got.Responses[2].Error, "not an absolute http or https URL")
	assert.Equal(t, "/dddd", got.Responses[3].Body)
}

func TestStream(t *testing.T) {
	h := newHost(t)
	body := strings.Repeat("stream me ", 1000) // 10,000 bytes
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	sum := sha256.Sum256([]byte(body))
	for _, tc := range []struct {
		max   int
		reads int
	}{
		{0, 3},      // 4096 + 4096 + 1808, the last read at EOF
		{1000, 10},  // exactly 10 chunks, the tenth at EOF
		{100000, 1}, // one read takes all
	} {
		t.Run(fmt.Sprint("max=", tc.max), func(t *testing.T) {
			out := run(t, h, "probe.stream", fmt.Sprintf(`{"url":"http://h/big","max":%d}`, tc.max))
			assert.JSONEq(t, fmt.Sprintf(`{"status":200,"bytes":10000,"sha256":%q,"reads":%d}`, hex.EncodeToString(sum[:]), tc.reads), out)
		})
	}
}

func TestFetch(t *testing.T) {
	h := newHost(t)
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Add("X-Echo", r.Header.Get("X-Probe"))
		w.Header().Add("X-Echo", "second")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	})
	out := run(t, h, "probe.fetch", `{"method":"PUT","url":"http://h/x","headers":{"x-probe":"v"},"body":"payload"}`)
	assert.JSONEq(t, `{"status":201,"headers":{"X-Echo":["v","second"]},"body":"PUT payload"}`, out)

	h.HTTP = nil // every fetch fails
	_, err := h.Run(t.Context(), "probe.fetch", "probe", json.RawMessage(`{"url":"http://h/x"}`))
	var e *agenttest.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "agent_error", e.Type)
	assert.Contains(t, e.Message, "fetch_error")
}

func TestSleep(t *testing.T) {
	h := newHost(t)
	assert.JSONEq(t, `{"slept_ms":250}`, run(t, h, "probe.sleep", `{"ms":250}`))
	assert.Equal(t, 250*time.Millisecond, h.Slept())
}

func TestSlow(t *testing.T) {
	h := newHost(t)
	var pinged int
	h.HTTP = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { pinged++ })
	assert.JSONEq(t, `{"stored":"after"}`, run(t, h, "probe.slow", `{"key":"k","ms":300,"ping":"http://h/ping"}`))
	assert.Equal(t, 1, pinged)
	assert.Equal(t, 300*time.Millisecond, h.Slept())
	assert.JSONEq(t, `{"stored":"after"}`, run(t, h, "probe.slow", `{"key":"k","read":true}`))
	assert.JSONEq(t, `{"stored":""}`, run(t, h, "probe.slow", `{"key":"other","read":true}`))
}

func TestHuge(t *testing.T) {
	var out struct{ Data string }
	require.NoError(t, json.Unmarshal([]byte(run(t, newHost(t), "probe.huge", `{"mib":2}`)), &out))
	assert.Equal(t, strings.Repeat("x", 2<<20), out.Data)
}

func TestUnknown(t *testing.T) {
	assert.JSONEq(t, `{"error_type":"unknown_effect"}`, run(t, newHost(t), "probe.unknown", `{}`))
}

func TestFail(t *testing.T) {
	_, err := newHost(t).Run(t.Context(), "probe.fail", "probe", nil)
	assert.Equal(t, &agenttest.Error{Type: "agent_error", Message: "probe failure", Status: 500}, err)
}

func TestEmit(t *testing.T) {
	h := newHost(t)
	assert.JSONEq(t, `{"emitted":3}`, run(t, h, "probe.emit", `{"events":3}`))
	events := h.Events()
	require.Len(t, events, 4, "three deltas, then the log record")
	for i, e := range events[:3] {
		assert.Equal(t, event.TypeTextDelta, e.Type)
		assert.JSONEq(t, fmt.Sprintf(`{"text":"%d"}`, i), string(e.Data))
	}
	assert.Equal(t, event.TypeLog, events[3].Type)
	logs := h.Logs()
	require.Len(t, logs, 1)
	assert.Equal(t, "info", logs[0].Level)
}

func TestRoundtrip(t *testing.T) {
	h := newHost(t)
	var hits int
	h.HTTP = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits++ })
	assert.JSONEq(t, `{"n":5}`, run(t, h, "probe.roundtrip", `{"n":5,"url":"http://h/"}`))
	assert.Equal(t, 5, hits)
}

func TestManifestListsTheProbes(t *testing.T) {
	var m struct {
		Agents []struct{ Name string } `json:"agents"`
	}
	require.NoError(t, json.Unmarshal(agenttest.Manifest(), &m))
	var names []string
	for _, a := range m.Agents {
		names = append(names, a.Name)
	}
	assert.Equal(t, []string{"probe.attack", "probe.batch", "probe.crash", "probe.effects", "probe.emit", "probe.fail", "probe.fetch", "probe.harness", "probe.huge", "probe.model", "probe.model.nopolicy", "probe.otel", "probe.policy",
		"probe.report", "probe.roundtrip", "probe.sandbox", "probe.sandbox.container", "probe.sandbox.local", "probe.sandbox.stream", "probe.sessions", "probe.sleep", "probe.slow", "probe.state", "probe.steps", "probe.stream", "probe.tool", "probe.tool.report", "probe.triage", "probe.unknown", "triage"}, names)
}

// probe.policy's contract, as the end-to-end suite uses it on both hosts
// (with the fakes on loopback and DAMPER_TARGETS).
func TestPolicyProbe(t *testing.T) {
	const secret = "probe-token-made-up-for-tests"
	h := newHost(t)
	h.Targets = map[string]string{"api": "http://api.test", "other": "http://other.test"}
	h.Secrets = map[string]string{"PROBE_API_TOKEN": secret}
	var seen []*http.Request
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r)
		switch r.Host + r.URL.Path {
		case "api.test/redirect-out":
			http.Redirect(w, r, "http://other.test/landing", http.StatusFound)
		default:
			// Hands the credential back: the module must not see it.
			fmt.Fprintf(w, "%s %s auth=%s", r.Host, r.URL.Path, r.Header.Get("Authorization"))
		}
	})
	for _, tc := range []struct {
		name, in, want string
		auth           string // what the last request to reach the fake carried
	}{
		{"allowed, with the credential", `{"url":"http://api.test/allowed/a"}`,
			`{"status":200,"body":"api.test /allowed/a auth=Bearer [REDACTED:PROBE_API_TOKEN]","headers":{"Content-Type":["text/plain; charset=utf-8"]},"denied":false,"reason":"","rule":"","error":""}`,
			"Bearer " + secret},
		{"the preset's own origin goes to the override", `{"url":"http://127.0.0.1:9/allowed/b"}`,
			`{"status":200,"body":"api.test /allowed/b auth=Bearer [REDACTED:PROBE_API_TOKEN]","headers":{"Content-Type":["text/plain; charset=utf-8"]},"denied":false,"reason":"","rule":"","error":""}`,
			"Bearer " + secret},
		{"denied by the level", `{"method":"POST","url":"http://api.test/allowed/a"}`,
			`{"status":0,"body":"","headers":null,"denied":true,"reason":"deny-level","rule":"","error":""}`, ""},
		{"limited: first", `{"url":"http://api.test/limited"}`, "", "Bearer " + secret},
		{"limited: second", `{"url":"http://api.test/limited"}`, "", "Bearer " + secret},
		{"limited: third", `{"url":"http://api.test/limited"}`,
			`{"status":0,"body":"","headers":null,"denied":true,"reason":"limit","rule":"limited","error":""}`, ""},
		{"redirected to other, without api's credential", `{"url":"http://api.test/redirect-out"}`,
			`{"status":200,"body":"other.test /landing auth=","headers":{"Content-Type":["text/plain; charset=utf-8"]},"denied":false,"reason":"","rule":"","error":""}`,
			""},
		{"a placeholder from the agent", `{"url":"http://other.test/x","headers":{"X-Smuggle":"${secret:PROBE_API_TOKEN}"}}`,
			`{"status":0,"body":"","headers":null,"denied":true,"reason":"placeholder","rule":"","error":""}`, ""},
		{"not a URL", `{"url":"::"}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(seen)
			out := run(t, h, "probe.policy", tc.in)
			assert.NotContains(t, out, secret)
			switch {
			case tc.name == "not a URL":
				assert.Contains(t, out, `"error":"parse`)
			case tc.want != "":
				assert.JSONEq(t, tc.want, out)
			}
			if tc.auth != "" {
				require.Greater(t, len(seen), before)
				assert.Equal(t, tc.auth, seen[len(seen)-1].Header.Get("Authorization"))
			} else if strings.Contains(tc.want, `"denied":true`) {
				assert.Len(t, seen, before, "a denied request is never sent")
			}
		})
	}
}

// probe.tool's contract, as tests/redteam_test.go uses it on both hosts:
// every request at once, each as given (header names as spelled, repeated
// ones kept), each read recorded, denials and errors reported per request.
func TestToolProbe(t *testing.T) {
	const secret = "rt-token-made-up-for-tests"
	h := newHost(t)
	h.Targets = map[string]string{"vault": "http://vault.test", "open": "http://open.test"}
	h.Secrets = map[string]string{"RT_TOKEN": secret}
	var seen []*http.Request
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r)
		fmt.Fprintf(w, "%s %s %s probe=%q auth=%s", r.Method, r.Host, r.URL.Path, r.Header.Values("X-Probe"), r.Header.Get("Authorization"))
	})
	var out agents.ToolOut
	require.NoError(t, json.Unmarshal([]byte(run(t, h, "probe.tool", `{"requests":[
		{"url":"http://vault.test/a","max":4},
		{"method":"post","url":"http://open.test/b","body":"x","headers":[["X-Probe","1"],["X-Probe","2"]]},
		{"url":"http://open.test/c","headers":[["X-Probe","${secret:RT_TOKEN}"]]},
		{"url":"http://elsewhere.test/"},
		{"url":"::"}]}`)), &out))
	require.Len(t, out.Results, 5)
	assert.Equal(t, `GET vault.test /a probe=[] auth=Bearer [REDACTED:RT_TOKEN]`, out.Results[0].Body)
	assert.Equal(t, out.Results[0].Body, strings.Join(out.Results[0].Reads, ""))
	for _, r := range out.Results[0].Reads {
		assert.LessOrEqual(t, len(r), 4, "reads of at most max bytes")
	}
	assert.Equal(t, `POST open.test /b probe=["1" "2"] auth=`, out.Results[1].Body)
	assert.Equal(t, [2]any{true, "placeholder"}, [2]any{out.Results[2].Denied, out.Results[2].Reason})
	assert.Equal(t, [2]any{true, "no-service"}, [2]any{out.Results[3].Denied, out.Results[3].Reason})
	assert.Contains(t, out.Results[4].Error, "parse")
	assert.Len(t, seen, 2, "denied requests are never sent")

	// The report policy sends what it would deny.
	require.NoError(t, json.Unmarshal([]byte(run(t, h, "probe.tool.report", `{"requests":[{"url":"http://elsewhere.test/"}]}`)), &out))
	assert.Equal(t, "GET elsewhere.test / probe=[] auth=", out.Results[0].Body)
}

// The hosts' shared table of effect cases, under agenttest: what passes
// here is what both hosts answer (tests/e2e_test.go runs it on them).
func TestEffectCases(t *testing.T) {
	f := effectcases.NewFakes(t)
	h := agenttest.New()
	h.HTTP = f.Handler()
	h.Targets = f.Targets()
	h.Secrets = map[string]string{"ECHO_TOKEN": effectcases.Secret}
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	effectcases.Run(t, f, func(t *testing.T, id string, in agents.EffectsIn) []byte {
		out, err := h.Run(t.Context(), "probe.effects", id, in)
		require.NoError(t, err)
		return out
	})
}

// probe.triage emits, in order, what the end-to-end suite expects of it,
// each event of a turn with its session and turn, each of a tool call with
// its call id.
func TestTriageEmitsItsTypes(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	out, err := h.Run(t.Context(), "probe.triage", "x", agents.TriageIn{Turns: 2, SleepMs: 1, FailTool: true})
	require.NoError(t, err)
	assert.JSONEq(t, `{"turns":3,"tools":1}`, string(out))
	var types []event.Type
	for _, e := range h.Events() {
		types = append(types, e.Type)
		assert.Equal(t, "s1", e.Session)
		assert.NotEmpty(t, e.Turn)
		if strings.HasPrefix(string(e.Type), "tool.") || strings.HasPrefix(string(e.Type), "shell.") {
			assert.True(t, strings.HasPrefix(e.Call, "call_"), "%s has its call id", e.Type)
		}
	}
	want := agents.TriageTypes(2, true)
	assert.Equal(t, want[1:len(want)-1], types, "agenttest has no run.start nor run.finish: the hosts write those")
}

// probe.steps runs each step once, and a run that starts again skips the
// steps it recorded.
func TestStepsRunEachStepOnce(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	out, err := h.Run(t.Context(), "probe.steps", "x", agents.StepsIn{Steps: 3, SleepMs: 10})
	require.NoError(t, err)
	assert.JSONEq(t, `{"executions":[1,1,1],"attempt":1}`, string(out))
}

// A command in the sandbox is two events of the run, whichever kind runs
// it: shell.exec with the script, shell.exit with how it ended.
func TestShellEvents(t *testing.T) {
	h := newHost(t)
	run(t, h, "probe.sandbox", `{"op":"exec","cmd":{"script":"echo out; echo err >&2; exit 3"}}`)
	var shell []event.Envelope
	for _, e := range h.Events() {
		if strings.HasPrefix(string(e.Type), "shell.") {
			shell = append(shell, e)
		}
	}
	require.Len(t, shell, 2)
	assert.Equal(t, event.TypeShellExec, shell[0].Type)
	assert.JSONEq(t, `{"command":"echo out; echo err >&2; exit 3","sandbox":"empty"}`, string(shell[0].Data))
	assert.Equal(t, event.TypeShellExit, shell[1].Type)
	p, err := shell[1].Payload()
	require.NoError(t, err)
	exit := p.(event.ShellExit)
	assert.Equal(t, 3, exit.ExitCode)
	assert.Equal(t, "out\nerr\n", exit.Output)
}
