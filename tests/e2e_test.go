// Package tests is damper's end-to-end suite: the same assertions, through
// real HTTP on loopback, against `damper serve` (wazero) and against the Worker
// under `wrangler dev` (workerd), both running the same test module.
package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/tests/agents"
	"github.com/damperdev/damper/tests/effectcases"
)

const token = "e2e-token-not-a-secret"

// TestE2E starts each host once and runs every user-facing behaviour of the
// foundation against it. Agent instance ids are unique per subtest, so
// subtests never share state.
func TestE2E(t *testing.T) {
	// The loopback fakes start first: the hosts point the agents' services
	// at them by configuration, as a user points a preset at a staging API.
	fake := newFakeAPI(t)
	apis := newPolicyFakes(t)
	gh := newGitHubFake(t)
	cases := effectcases.NewFakes(t)
	models := newModelFakes(t)
	env := map[string]string{
		"DAMPER_TARGETS": "fake=" + fake.URL + ",api=" + apis.api.URL + ",other=" + apis.other.URL + ",github=" + gh.URL +
			",echo=" + cases.Echo.URL + ",plain=" + cases.Plain.URL + "," + models.targets(),
		"PROBE_API_TOKEN": apis.secret,
		"GITHUB_TOKEN":    gh.token,
		"ECHO_TOKEN":      effectcases.Secret,
		"DAMPER_MODEL":    hostModel,
		// Streams of idle instances send a comment every second here.
		"DAMPER_HEARTBEAT": "1s",
	}
	for k, v := range models.secrets() {
		env[k] = v
	}
	forEachHost(t, token, env, func(t *testing.T, h host) {
		c := &client{h: h, token: token}
		t.Run("health", func(t *testing.T) { testHealth(t, c) })
		t.Run("auth", func(t *testing.T) { testAuth(t, c) })
		t.Run("hello", func(t *testing.T) { testHello(t, c) })
		t.Run("instances_have_their_own_state", func(t *testing.T) { testManyInstances(t, c) })
		t.Run("concurrent_runs_lose_no_update", func(t *testing.T) { testConcurrentRuns(t, c) })
		t.Run("bad_input", func(t *testing.T) { testBadInput(t, c) })
		t.Run("unknown_agent_lists_the_agents", func(t *testing.T) { testUnknownAgent(t, c) })
		t.Run("effects", func(t *testing.T) { testEffects(t, c, fake) })
		t.Run("whole_bodies_in_flight", func(t *testing.T) { testBodiesInFlight(t, c, fake) })
		t.Run("content_encoding", func(t *testing.T) { testContentEncoding(t, c, fake) })
		t.Run("policy", func(t *testing.T) { testPolicy(t, c, apis) })
		t.Run("preset_with_target_override", func(t *testing.T) { testPreset(t, c, gh) })
		t.Run("models", func(t *testing.T) { testModels(t, c, models) })
		t.Run("harness", func(t *testing.T) { testHarness(t, c, models) })
		t.Run("trap_fails_alone", func(t *testing.T) { testTrap(t, c) })
		t.Run("effect_cases", func(t *testing.T) {
			effectcases.Run(t, cases, func(t *testing.T, id string, in agents.EffectsIn) []byte {
				payload, err := json.Marshal(in)
				require.NoError(t, err)
				r := c.post(t, "probe.effects", id, string(payload))
				require.Equal(t, http.StatusOK, r.status, "%s", r.body)
				var out struct{ Result json.RawMessage }
				require.NoError(t, json.Unmarshal(r.body, &out))
				return out.Result
			})
		})
		t.Run("shell", func(t *testing.T) { testShell(t, c) })
		t.Run("sandbox_conformance", func(t *testing.T) { testSandboxConformance(t, c) })
		t.Run("events", func(t *testing.T) { testEvents(t, c) })
		t.Run("sandbox_kinds", func(t *testing.T) { testRemoteKinds(t, c) })
		// Last: it restarts the host.
		t.Run("state_survives_restart", func(t *testing.T) { testRestart(t, c, h, apis) })
	})
}

type client struct {
	h     host
	token string
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(r.body, &v), "body: %s", r.body)
	return v
}

// errorType returns error.type of an error body, failing if it has none.
func (r reply) errorType(t *testing.T) string {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	require.True(t, ok, "no error object in %s", r.body)
	msg, _ := e["message"].(string)
	assert.NotEmpty(t, msg, "error without a message: %s", r.body)
	typ, _ := e["type"].(string)
	return typ
}

func (c *client) do(t *testing.T, method, path string, body io.Reader, hdr map[string]string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(t), method, c.h.URL()+path, body)
	require.NoError(t, err)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func (c *client) post(t *testing.T, agent, id, payload string) reply {
	t.Helper()
	return c.do(t, http.MethodPost, "/agents/"+agent+"/"+id, strings.NewReader(payload), map[string]string{"Content-Type": "application/json"})
}

// run posts a payload and requires a 200 with a run id, returning the result.
func (c *client) run(t *testing.T, agent, id, payload string) map[string]any {
	t.Helper()
	r := c.post(t, agent, id, payload)
	require.Equal(t, http.StatusOK, r.status, "POST %s/%s %s: %s", agent, id, payload, r.body)
	v := r.json(t)
	run, _ := v["run"].(string)
	require.True(t, strings.HasPrefix(run, "r_"), "run id %q", v["run"])
	res, ok := v["result"].(map[string]any)
	require.True(t, ok, "result is not an object: %s", r.body)
	return res
}

func (c *client) visits(t *testing.T, id, name string) int {
	t.Helper()
	res := c.run(t, "hello", id, fmt.Sprintf(`{"name":%q}`, name))
	require.Equal(t, "Hello, "+name+"!", res["greeting"])
	return int(res["visits"].(float64))
}

func testHealth(t *testing.T, c *client) {
	anon := &client{h: c.h}
	r := anon.do(t, http.MethodGet, "/health", nil, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, "ok", r.json(t)["status"])
	assert.EqualValues(t, 1, r.json(t)["abi"])
	assert.NotEmpty(t, r.header.Get("X-Request-Id"))
	assert.Contains(t, r.header.Get("Content-Type"), "application/json")

	head := anon.do(t, http.MethodHead, "/health", nil, nil)
	assert.Equal(t, http.StatusOK, head.status)
	post := anon.do(t, http.MethodPost, "/health", nil, nil)
	require.Equal(t, http.StatusMethodNotAllowed, post.status)
	assert.Equal(t, "GET, HEAD", post.header.Get("Allow"))
	assert.Equal(t, "method_not_allowed", post.errorType(t))
}

func testAuth(t *testing.T, c *client) {
	cases := []struct {
		name, auth string
	}{
		{"missing", ""},
		{"wrong token", "Bearer " + token + "x"},
		{"prefix of the token", "Bearer " + token[:len(token)-1]},
		{"not bearer", "Basic " + token},
		{"bare token", token},
		{"empty bearer", "Bearer "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/agents/hello/auth-probe", "/agents/nope/x", "/nowhere"} {
				r := c.do(t, http.MethodPost, path, strings.NewReader(`{"name":"x"}`), map[string]string{"Authorization": tc.auth})
				require.Equal(t, http.StatusUnauthorized, r.status, "%s: %s", path, r.body)
				assert.Equal(t, "unauthorized", r.errorType(t))
				assert.NotEmpty(t, r.header.Get("X-Request-Id"))
			}
		})
	}
	// The refused calls ran nothing: the first authorized visit is the first.
	assert.Equal(t, 1, c.visits(t, "auth-probe", "x"))
}

func testHello(t *testing.T, c *client) {
	r := c.post(t, "hello", "hello-1", `{"name":"Ada"}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.NotEmpty(t, r.header.Get("X-Request-Id"))
	v := r.json(t)
	assert.Equal(t, map[string]any{"greeting": "Hello, Ada!", "visits": 1.0}, v["result"])
	assert.Equal(t, 2, c.visits(t, "hello-1", "Ada"))
	// Another agent instance starts from zero.
	assert.Equal(t, 1, c.visits(t, "hello-2", "Ada"))
	// The run id is fresh each time.
	r2 := c.post(t, "hello", "hello-1", `{"name":"Ada"}`)
	require.Equal(t, http.StatusOK, r2.status)
	assert.NotEqual(t, v["run"], r2.json(t)["run"])
	// No body is the null payload: the zero input.
	empty := c.do(t, http.MethodPost, "/agents/hello/hello-3", nil, nil)
	require.Equal(t, http.StatusOK, empty.status, "%s", empty.body)
	assert.Equal(t, "Hello, world!", empty.json(t)["result"].(map[string]any)["greeting"])
}

func testManyInstances(t *testing.T, c *client) {
	// Each new instance is a Durable Object with a module instance of its
	// own, all running at once. (Under load, wrangler 4.86's proxy lost
	// such POSTs and called it "Your worker restarted mid-request"; 4.164
	// loses none: docs/architecture.md.)
	const n = 50
	var wg sync.WaitGroup
	got := make([][2]int, n)
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("many-%d", i)
			for round := range 2 {
				r := c.post(t, "hello", id, fmt.Sprintf(`{"name":"n%d"}`, i))
				if r.status != http.StatusOK {
					errs[i] = fmt.Sprintf("%s: %d %s", id, r.status, r.body)
					return
				}
				var v struct {
					Result struct {
						Greeting string `json:"greeting"`
						Visits   int    `json:"visits"`
					} `json:"result"`
				}
				if err := json.Unmarshal(r.body, &v); err != nil || v.Result.Greeting != fmt.Sprintf("Hello, n%d!", i) {
					errs[i] = fmt.Sprintf("%s: %s", id, r.body)
					return
				}
				got[i][round] = v.Result.Visits
			}
		}()
	}
	wg.Wait()
	for i := range n {
		require.Empty(t, errs[i])
		assert.Equal(t, [2]int{1, 2}, got[i], "agent instance many-%d", i)
	}
}

func testConcurrentRuns(t *testing.T, c *client) {
	const n = 20
	var wg sync.WaitGroup
	visits := make([]int, n)
	fails := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.post(t, "hello", "contended", `{"name":"c"}`)
			if r.status != http.StatusOK {
				fails[i] = fmt.Sprintf("%d %s", r.status, r.body)
				return
			}
			var v struct {
				Result struct{ Visits int } `json:"result"`
			}
			if err := json.Unmarshal(r.body, &v); err != nil {
				fails[i] = string(r.body)
			}
			visits[i] = v.Result.Visits
		}()
	}
	wg.Wait()
	for _, f := range fails {
		require.Empty(t, f)
	}
	// Serialized runs: every run saw a distinct count, 1..n, none lost.
	sort.Ints(visits)
	for i, v := range visits {
		assert.Equal(t, i+1, v)
	}
	assert.Equal(t, n+1, c.visits(t, "contended", "c"))
}

func testBadInput(t *testing.T, c *client) {
	const id = "bad-input"
	require.Equal(t, 1, c.visits(t, id, "b"))
	big := `{"name":"` + strings.Repeat("a", 1<<20) + `"}`
	cases := []struct {
		name, method, path, body string
		status                   int
		typ                      string
	}{
		{"malformed json", "POST", "/agents/hello/" + id, `{"name":`, 400, "invalid_json"},
		{"two json values", "POST", "/agents/hello/" + id, `{"name":"a"} {"name":"b"}`, 400, "invalid_json"},
		{"not json", "POST", "/agents/hello/" + id, `name=a`, 400, "invalid_json"},
		{"wrong type", "POST", "/agents/hello/" + id, `{"name":5}`, 400, "invalid_payload"},
		{"unknown field", "POST", "/agents/hello/" + id, `{"name":"a","admin":true}`, 400, "invalid_payload"},
		{"array payload", "POST", "/agents/hello/" + id, `["a"]`, 400, "invalid_payload"},
		{"id with a space", "POST", "/agents/hello/bad%20id", `{}`, 400, "invalid_name"},
		// workerd resolves dot segments (WHATWG) before the Worker sees the
		// URL, so there these arrive as /agents/: a 404 instead of a 400.
		{"id dot dot", "POST", "/agents/hello/..", `{}`, 400, "invalid_name|not_found"},
		{"id encoded dot dot", "POST", "/agents/hello/%2e%2e", `{}`, 400, "invalid_name|not_found"},
		{"id dot", "POST", "/agents/hello/.", `{}`, 400, "invalid_name|not_found"},
		{"id encoded slash", "POST", "/agents/hello/a%2fb", `{}`, 400, "invalid_name"},
		{"id too long", "POST", "/agents/hello/" + strings.Repeat("x", 129), `{}`, 400, "invalid_name"},
		{"agent name with a star", "POST", "/agents/he*llo/" + id, `{}`, 400, "invalid_name"},
		{"unknown agent", "POST", "/agents/nobody/" + id, `{}`, 404, "not_found"},
		{"unknown route", "POST", "/agents/hello", `{}`, 404, "not_found"},
		{"deeper route", "POST", "/agents/hello/" + id + "/more", `{}`, 404, "not_found"},
		{"GET on a run route", "GET", "/agents/hello/" + id, ``, 405, "method_not_allowed"},
		{"PUT on a run route", "PUT", "/agents/hello/" + id, `{}`, 405, "method_not_allowed"},
		{"body over 1 MiB", "POST", "/agents/hello/" + id, big, 413, "payload_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do(t, tc.method, tc.path, strings.NewReader(tc.body), nil)
			typ := r.errorType(t)
			if typ == "not_found" && strings.HasSuffix(tc.typ, "|not_found") {
				assert.Equal(t, http.StatusNotFound, r.status)
			} else {
				require.Equal(t, tc.status, r.status, "%s", truncate(r.body))
				assert.Equal(t, strings.TrimSuffix(tc.typ, "|not_found"), typ)
			}
			assert.NotEmpty(t, r.header.Get("X-Request-Id"))
			if tc.status == http.StatusMethodNotAllowed {
				assert.Contains(t, r.header.Get("Allow"), "POST")
			}
		})
	}
	// None of it ran or stored anything.
	assert.Equal(t, 2, c.visits(t, id, "b"))
}

// testUnknownAgent: both hosts answer a typo with the same text, which
// lists the agents the module has.
func testUnknownAgent(t *testing.T, c *client) {
	raw, err := os.ReadFile(build(t).manifest)
	require.NoError(t, err)
	var m wire.Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	var names []string
	for _, a := range m.Agents {
		names = append(names, a.Name)
	}
	require.Contains(t, names, "hello")
	r := c.post(t, "helo", "x", `{}`)
	require.Equal(t, http.StatusNotFound, r.status, "%s", r.body)
	e := r.json(t)["error"].(map[string]any)
	assert.Equal(t, "not_found", e["type"])
	assert.Equal(t, wire.UnknownAgentMessage("helo", names), e["message"])
	assert.Contains(t, e["message"], `no agent named "helo"; this module's agents: hello, `)
}

func testEffects(t *testing.T, c *client, fake *fakeAPI) {
	t.Run("fetch", func(t *testing.T) {
		res := c.run(t, "probe.fetch", "fx", fmt.Sprintf(`{"method":"POST","url":%q,"headers":{"X-Probe":"1"},"body":"ping"}`, fake.URL+"/echo"))
		assert.EqualValues(t, 200, res["status"])
		assert.Equal(t, "POST ping 1", res["body"])
	})
	t.Run("redirect is not followed", func(t *testing.T) {
		res := c.run(t, "probe.fetch", "fx", fmt.Sprintf(`{"method":"GET","url":%q}`, fake.URL+"/redirect"))
		assert.EqualValues(t, 302, res["status"])
		assert.Zero(t, fake.hits("/echo-after-redirect"), "the host followed a redirect")
	})
	t.Run("batch", func(t *testing.T) {
		urls := make([]string, 4)
		for i := range urls {
			urls[i] = fmt.Sprintf("%s/echo?n=%d", fake.URL, i)
		}
		b, _ := json.Marshal(map[string]any{"urls": urls})
		res := c.run(t, "probe.batch", "fx", string(b))
		rs := res["responses"].([]any)
		require.Len(t, rs, 4)
		for i, r := range rs {
			assert.Equal(t, fmt.Sprintf("GET  n=%d", i), r.(map[string]any)["body"])
		}
	})
	t.Run("stream", func(t *testing.T) {
		res := c.run(t, "probe.stream", "fx", fmt.Sprintf(`{"url":%q,"max":1000}`, fake.URL+"/big"))
		sum := sha256.Sum256(bigBody)
		assert.EqualValues(t, len(bigBody), res["bytes"])
		assert.Equal(t, hex.EncodeToString(sum[:]), res["sha256"])
		assert.GreaterOrEqual(t, res["reads"].(float64), float64(len(bigBody)/1000), "the body was not streamed in chunks")
	})
	t.Run("unknown effect", func(t *testing.T) {
		assert.Equal(t, "unknown_effect", c.run(t, "probe.unknown", "fx", `{}`)["error_type"])
	})
	t.Run("sleep", func(t *testing.T) {
		assert.EqualValues(t, 20, c.run(t, "probe.sleep", "fx", `{"ms":20}`)["slept_ms"])
	})
	t.Run("agent error", func(t *testing.T) {
		r := c.post(t, "probe.fail", "fx", `{}`)
		require.Equal(t, http.StatusInternalServerError, r.status)
		assert.Equal(t, "agent_error", r.errorType(t))
		assert.Contains(t, string(r.body), "probe failure")
	})
}

func testTrap(t *testing.T, c *client) {
	for _, mode := range []string{"panic", "exit"} {
		t.Run(mode, func(t *testing.T) {
			victim, bystander := "trap-"+mode, "bystander-"+mode
			c.run(t, "probe.state", victim, `{"op":"set","key":"k","value":"kept"}`)
			before := c.visits(t, bystander, "b")

			r := c.post(t, "probe.crash", victim, fmt.Sprintf(`{"mode":%q}`, mode))
			require.Equal(t, http.StatusInternalServerError, r.status, "%s", r.body)
			assert.Equal(t, "module_trap", r.errorType(t))

			// Another agent instance keeps its state and keeps working.
			assert.Equal(t, before+1, c.visits(t, bystander, "b"))
			// The trapped agent instance works again, with its committed state.
			got := c.run(t, "probe.state", victim, `{"op":"get","key":"k"}`)
			assert.Equal(t, map[string]any{"found": true, "value": "kept"}, got)
		})
	}
}

func testRestart(t *testing.T, c *client, h host, apis *policyFakes) {
	before := c.visits(t, "restart", "r")
	c.run(t, "probe.state", "restart", `{"op":"set","key":"k","value":{"n":42}}`)
	for range 2 {
		require.False(t, apis.get(t, c, "restart", "/limited", nil).Denied)
	}
	h.Restart(t)
	// The policy's count limit is stored state too.
	assert.True(t, apis.get(t, c, "restart", "/limited", nil).Denied, "the limit reset on restart")
	assert.Equal(t, before+1, c.visits(t, "restart", "r"))
	got := c.run(t, "probe.state", "restart", `{"op":"get","key":"k"}`)
	assert.Equal(t, map[string]any{"found": true, "value": map[string]any{"n": 42.0}}, got)
}

var bigBody = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}()

// fakeAPI is a loopback HTTP server the probe agents call through fetch
// effects.
type fakeAPI struct {
	*httptest.Server
	mu     sync.Mutex
	count  map[string]int
	accept map[string][]string // path → the Accept-Encoding lines last sent
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{count: map[string]int{}, accept: map[string][]string{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.count[r.URL.Path]++
		f.accept[r.URL.Path] = r.Header.Values("Accept-Encoding")
		f.mu.Unlock()
		if name, ok := strings.CutPrefix(r.URL.Path, "/coded/"); ok {
			serveCoded(t, w, name)
			return
		}
		switch r.URL.Path {
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s %s", r.Method, b, r.Header.Get("X-Probe")+r.URL.RawQuery)
		case "/redirect":
			http.Redirect(w, r, "/echo-after-redirect", http.StatusFound)
		case "/twenty":
			w.Header().Set("Content-Length", fmt.Sprint(len(twentyMiB)))
			_, _ = w.Write(twentyMiB)
		case "/big":
			// Flushed in pieces, so the host sees a stream, not one buffer.
			fl := w.(http.Flusher)
			for off := 0; off < len(bigBody); off += 8 << 10 {
				_, _ = w.Write(bigBody[off : off+8<<10])
				fl.Flush()
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeAPI) acceptEncoding(path string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accept[path]
}

func (f *fakeAPI) hits(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[path]
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

var twentyMiB = bytes.Repeat([]byte("20 MiB of body. "), 20<<20/16)

// Two whole 20 MiB bodies in one batch: the agent instance may hold 32 MiB
// of whole bodies at once on both hosts, so one is read and the other fails
// at once, saying to stream; a run that streams would take both.
func testBodiesInFlight(t *testing.T, c *client, fake *fakeAPI) {
	payload := fmt.Sprintf(`{"urls":[%q,%q],"sizes":true}`, fake.URL+"/twenty", fake.URL+"/twenty")
	res := c.run(t, "probe.batch", "bodies", payload)
	var whole, refused int
	for _, r := range res["responses"].([]any) {
		r := r.(map[string]any)
		if r["error"] == "" {
			assert.EqualValues(t, len(twentyMiB), r["bytes"])
			whole++
			continue
		}
		assert.Contains(t, r["error"], "whole response bodies in flight would exceed 33554432 bytes; fetch large bodies with stream")
		refused++
	}
	assert.Equal(t, [2]int{1, 1}, [2]int{whole, refused})
	// The budget is given back once the guest has the batch.
	res = c.run(t, "probe.batch", "bodies", fmt.Sprintf(`{"urls":[%q],"sizes":true}`, fake.URL+"/twenty"))
	assert.Equal(t, "", res["responses"].([]any)[0].(map[string]any)["error"])
}
