//go:build !wasip1

package agent_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/runtime/internal/guest"
	"github.com/damperdev/damper/runtime/internal/store"
)

// Made-up secret values: tests never need real ones.
const (
	apiToken   = "test-api-token-0123456789"
	basicToken = "test-basic-token/+ 9876"
)

// policyIn is one request of test.policy. Client sends it with an
// http.Client on ctx.Transport(); Stream with ctx.Transport() alone;
// otherwise ctx.Fetch. With CountOf, it reads the stored count of that
// rule instead.
type policyIn struct {
	CountOf string            `json:"count_of,omitempty"`
	Method  string            `json:"method,omitempty"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	Stream  bool              `json:"stream,omitempty"`
	Client  bool              `json:"client,omitempty"`
}

// policyOut is what the agent saw: the response, or the denial.
type policyOut struct {
	Status   int                 `json:"status,omitempty"`
	Body     string              `json:"body,omitempty"`
	Headers  map[string][]string `json:"headers,omitempty"`
	FinalURL string              `json:"final_url,omitempty"`
	Denied   bool                `json:"denied,omitempty"`
	Reason   string              `json:"reason,omitempty"`
	Rule     string              `json:"rule,omitempty"`
	Service  string              `json:"service,omitempty"`
	Error    string              `json:"error,omitempty"`
	Count    float64             `json:"count,omitempty"`
}

func sendPolicyRequest(ctx *agent.Context, in policyIn) (policyOut, error) {
	var out policyOut
	if in.CountOf != "" {
		rs, err := store.Exec(ctx, wire.Statement{SQL: `SELECT used FROM _damper_policy_counters WHERE rule = ?`, Args: []any{in.CountOf}})
		if err == nil && len(rs[0].Rows) == 1 {
			out.Count = rs[0].Rows[0][0].(float64)
		}
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, in.Method, in.URL, strings.NewReader(in.Body))
	if err != nil {
		return out, err
	}
	for k, v := range in.Headers {
		req.Header.Set(k, v)
	}
	var resp *http.Response
	switch {
	case in.Client:
		resp, err = (&http.Client{Transport: ctx.Transport()}).Do(req)
	case in.Stream:
		resp, err = ctx.Transport().RoundTrip(req)
	default:
		resp, err = ctx.Fetch(req)
	}
	var denied *policy.DenyError
	if errors.As(err, &denied) {
		out.Denied, out.Reason, out.Rule, out.Service = true, string(denied.Decision.Reason), denied.Decision.Rule, denied.Decision.Service
		out.Error = err.Error()
		return out, nil
	}
	if err != nil {
		out.Error = err.Error()
		return out, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, err
	}
	out.Status, out.Body, out.Headers, out.FinalURL = resp.StatusCode, string(body), resp.Header, resp.Request.URL.String()
	return out, nil
}

func init() {
	p, err := policy.New(
		policy.NewService("api", "https://api.example").
			Credential("Authorization", "Bearer ${secret:API_TOKEN}").
			AddHeaders("X-Test", "Cookie", "Content-Type").
			Allow(
				policy.On("/allowed/**", "GET", "POST").ID("allowed"),
				policy.On("/limited", "GET").Limit(2).ID("limited"),
				policy.On("/redirect/**").ID("redirect"),
			),
		policy.NewService("other", "https://other.example").Level(policy.AllowRead).AddHeaders("X-Test", "Cookie"),
		policy.NewService("basic", "https://basic.example").Level(policy.AllowAll).
			Credential("Authorization", "${basic:bot:BASIC_TOKEN}"),
		policy.NewService("report", "https://report.example").Report(),
	)
	if err != nil {
		panic(err)
	}
	agent.Register("test.policy", sendPolicyRequest, agent.WithPolicy(p))
	agent.Register("test.nopolicy", sendPolicyRequest)
	// test.policy.fanout sends n requests of in at once, in one Group.
	agent.Register("test.policy.fanout", func(ctx *agent.Context, in struct {
		N   int      `json:"n"`
		Req policyIn `json:"req"`
	}) ([]policyOut, error) {
		outs := make([]policyOut, in.N)
		g := ctx.Group()
		for i := range outs {
			g.Go(func() (err error) {
				outs[i], err = sendPolicyRequest(ctx, in.Req)
				return err
			})
		}
		return outs, g.Wait()
	}, agent.WithPolicy(p))
}

// fakeWeb answers every origin the policy tests reach, and records what
// each request carried.
type fakeWeb struct {
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	Host, Method, Path, Body string
	Header                   http.Header
}

func (f *fakeWeb) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen = append(f.seen, seenRequest{Host: r.Host, Method: r.Method, Path: r.URL.Path, Body: string(body), Header: r.Header.Clone()})
	f.mu.Unlock()
	q := r.URL.Query()
	switch {
	case r.URL.Path == "/redirect/to":
		code, _ := strconv.Atoi(q.Get("code"))
		w.Header().Set("Location", q.Get("loc"))
		w.WriteHeader(code)
	case r.URL.Path == "/redirect/chain":
		n, _ := strconv.Atoi(q.Get("n"))
		if n > 0 {
			w.Header().Set("Location", fmt.Sprintf("/redirect/chain?n=%d", n-1))
			w.WriteHeader(http.StatusFound)
			return
		}
		io.WriteString(w, "end of chain")
	case r.URL.Path == "/echo-secret":
		// A server that hands the credential back, in every encoding.
		auth := r.Header.Get("Authorization")
		w.Header().Set("X-Echo", auth)
		fmt.Fprintf(w, "raw=%s b64=%s pct=%s", auth, base64.StdEncoding.EncodeToString([]byte(apiToken)), url.QueryEscape(basicToken))
	default:
		fmt.Fprintf(w, "%s %s%s %s", r.Method, r.Host, r.URL.RequestURI(), body)
	}
}

// requests returns the requests seen so far to host.
func (f *fakeWeb) requests(host string) []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []seenRequest
	for _, s := range f.seen {
		if s.Host == host {
			out = append(out, s)
		}
	}
	return out
}

func newPolicyHost(t *testing.T) (*agenttest.Host, *fakeWeb) {
	t.Helper()
	h := newHost(t)
	web := &fakeWeb{}
	h.HTTP = web
	h.Secrets = map[string]string{"API_TOKEN": apiToken, "BASIC_TOKEN": basicToken}
	return h, web
}

func runPolicy(t *testing.T, h *agenttest.Host, agentName, instance string, in any) policyOut {
	t.Helper()
	raw, err := h.Run(t.Context(), agentName, instance, in)
	require.NoError(t, err)
	var out policyOut
	require.NoError(t, json.Unmarshal(raw, &out))
	return out
}

// decisionEvent is the data of a policy.allow, policy.deny or
// policy.report event.
type decisionEvent struct {
	Service string `json:"service"`
	Rule    string `json:"rule"`
	Reason  string `json:"reason"`
	Method  string `json:"method"`
	URL     string `json:"url"`
}

// decisions returns the policy events among events, in order.
func decisions(t *testing.T, events []agenttest.Event) (types []string, data []decisionEvent) {
	t.Helper()
	for _, e := range events {
		if !strings.HasPrefix(string(e.Type), "policy.") {
			continue
		}
		var d decisionEvent
		require.NoError(t, json.Unmarshal(e.Data, &d))
		types, data = append(types, string(e.Type)), append(data, d)
	}
	return types, data
}

func TestPolicyDecidesEveryRequest(t *testing.T) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bot:"+basicToken))
	for _, tc := range []struct {
		name string
		in   policyIn
		// what the agent gets
		status int
		reason string
		rule   string
		// what reached the server: its host, path and these headers
		host    string
		path    string
		headers map[string]string
		// the decision's event
		event string
		url   string
	}{
		{
			name: "an allowed request carries the service's credential", in: policyIn{URL: "https://api.example/allowed/x"},
			status: 200, reason: "allow-rule", rule: "allowed",
			host: "api.example", path: "/allowed/x", headers: map[string]string{"Authorization": "Bearer " + apiToken},
			event: string(event.TypePolicyAllow), url: "https://api.example/allowed/x",
		},
		{
			name: "a streamed request too", in: policyIn{URL: "https://api.example/allowed/y", Stream: true},
			status: 200, reason: "allow-rule", rule: "allowed",
			host: "api.example", path: "/allowed/y", headers: map[string]string{"Authorization": "Bearer " + apiToken},
			event: string(event.TypePolicyAllow), url: "https://api.example/allowed/y",
		},
		{
			name: "the canonical URL is decided and sent", in: policyIn{URL: "https://API.example:443/allowed/a/../b//c#frag"},
			status: 200, reason: "allow-rule", rule: "allowed",
			host: "api.example", path: "/allowed/b/c",
			event: string(event.TypePolicyAllow), url: "https://api.example/allowed/b/c",
		},
		{
			name: "headers outside the allowlist are stripped", in: policyIn{URL: "https://api.example/allowed/h", Headers: map[string]string{"X-Test": "kept", "X-Other": "stripped"}},
			status: 200, reason: "allow-rule", rule: "allowed",
			host: "api.example", path: "/allowed/h", headers: map[string]string{"X-Test": "kept", "X-Other": ""},
			event: string(event.TypePolicyAllow), url: "https://api.example/allowed/h",
		},
		{
			name: "a Basic credential", in: policyIn{URL: "https://basic.example/b"},
			status: 200, reason: "allow-level",
			host: "basic.example", path: "/b", headers: map[string]string{"Authorization": basic},
			event: string(event.TypePolicyAllow), url: "https://basic.example/b",
		},
		{
			name: "a method no rule allows", in: policyIn{Method: "DELETE", URL: "https://api.example/allowed/x"},
			reason: "deny-level", event: string(event.TypePolicyDeny), url: "https://api.example/allowed/x",
		},
		{
			name: "a host no service has", in: policyIn{URL: "https://evil.example/steal"},
			reason: "no-service", event: string(event.TypePolicyDeny), url: "https://evil.example/steal",
		},
		{
			name: "a placeholder from the agent", in: policyIn{URL: "https://api.example/allowed/x", Headers: map[string]string{"X-Test": "${secret:API_TOKEN}"}},
			reason: "placeholder", event: string(event.TypePolicyDeny), url: "https://api.example/allowed/x",
		},
		{
			name: "report mode sends a would-be denial and says so", in: policyIn{Method: "POST", URL: "https://report.example/r", Body: "b"},
			status: 200, reason: "deny-level",
			host: "report.example", path: "/r",
			event: string(event.TypePolicyReport), url: "https://report.example/r",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, web := newPolicyHost(t)
			out := runPolicy(t, h, "test.policy", "decide", tc.in)
			if tc.status == 0 {
				assert.True(t, out.Denied, "%+v", out)
				assert.Equal(t, tc.reason, out.Reason)
				assert.Empty(t, web.seen, "a denied request is never sent")
			} else {
				require.False(t, out.Denied, "%+v", out)
				assert.Equal(t, tc.status, out.Status)
				reqs := web.requests(tc.host)
				require.Len(t, reqs, 1)
				assert.Equal(t, tc.path, reqs[0].Path)
				for k, v := range tc.headers {
					assert.Equal(t, v, reqs[0].Header.Get(k), "header %s", k)
				}
			}
			types, data := decisions(t, h.Events())
			require.Equal(t, []string{tc.event}, types)
			assert.Equal(t, tc.reason, data[0].Reason)
			assert.Equal(t, tc.rule, data[0].Rule)
			assert.Equal(t, tc.url, data[0].URL)
		})
	}
}

func TestAgentWithoutPolicyMayNotFetch(t *testing.T) {
	h, web := newPolicyHost(t)
	out := runPolicy(t, h, "test.nopolicy", "n", policyIn{URL: "https://api.example/allowed/x"})
	assert.True(t, out.Denied)
	assert.Equal(t, "no-service", out.Reason)
	assert.Contains(t, out.Error, "agent test.nopolicy has no policy")
	assert.Empty(t, web.seen)
	types, _ := decisions(t, h.Events())
	assert.Equal(t, []string{string(event.TypePolicyDeny)}, types)
}

func TestSecretsNeverReachTheModule(t *testing.T) {
	h, web := newPolicyHost(t)
	for _, in := range []policyIn{
		{URL: "https://api.example/allowed/../echo-secret"}, // outside /allowed: denied
		{URL: "https://api.example/redirect/to?code=307&loc=/echo-secret"},
		{URL: "https://basic.example/echo-secret"},
		{URL: "https://basic.example/echo-secret", Stream: true},
	} {
		out := runPolicy(t, h, "test.policy", "s", in)
		raw, err := json.Marshal(out)
		require.NoError(t, err)
		for _, secret := range []string{apiToken, basicToken, base64.StdEncoding.EncodeToString([]byte(apiToken)), url.QueryEscape(basicToken)} {
			assert.NotContains(t, string(raw), secret, "%s", in.URL)
		}
	}
	require.NotEmpty(t, web.requests("basic.example"), "the server did get the secret")
	for _, e := range h.Events() {
		assert.NotContains(t, string(e.Data), "test-")
	}

	// A placeholder for a secret the origin does not own is refused by the
	// host: here the agent smuggles one past a policy that allows anything.
	h.Secrets = map[string]string{} // and a secret that is not set
	out := runPolicy(t, h, "test.policy", "s", policyIn{URL: "https://basic.example/unset"})
	assert.Contains(t, out.Error, "secret BASIC_TOKEN is not configured")
}

func TestLimitIsCountedInStorage(t *testing.T) {
	h, web := newPolicyHost(t)
	limited := policyIn{URL: "https://api.example/limited"}
	for i, want := range []bool{false, false, true, true} {
		out := runPolicy(t, h, "test.policy", "lim", limited)
		assert.Equal(t, want, out.Denied, "request %d", i+1)
		if want {
			assert.Equal(t, "limit", out.Reason)
			assert.Equal(t, "limited", out.Rule)
		}
	}
	agenttest.Restart()
	assert.True(t, runPolicy(t, h, "test.policy", "lim", limited).Denied, "the count outlives the module instance")
	assert.False(t, runPolicy(t, h, "test.policy", "lim2", limited).Denied, "each agent instance has its own count")
	assert.Len(t, web.requests("api.example"), 3)

	count := func(instance string) float64 {
		return runPolicy(t, h, "test.policy", instance, policyIn{CountOf: "limited"}).Count
	}
	assert.EqualValues(t, 2, count("lim"), "denied requests are not counted")

	// Concurrent requests of one run: the count is reserved atomically,
	// so exactly the limit gets through.
	raw, err := h.Run(t.Context(), "test.policy.fanout", "lim3", map[string]any{"n": 6, "req": limited})
	require.NoError(t, err)
	var outs []policyOut
	require.NoError(t, json.Unmarshal(raw, &outs))
	allowed := 0
	for _, o := range outs {
		if !o.Denied {
			allowed++
		} else {
			assert.Equal(t, "limit", o.Reason)
		}
	}
	assert.Equal(t, 2, allowed)
	raw, err = h.Run(t.Context(), "test.policy.fanout", "lim3", map[string]any{"n": 1, "req": policyIn{CountOf: "limited"}})
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &outs))
	assert.EqualValues(t, 2, outs[0].Count)
}

func TestFetchDecidesEveryRedirectHop(t *testing.T) {
	to := func(code int, loc string) string {
		return fmt.Sprintf("https://api.example/redirect/to?code=%d&loc=%s", code, url.QueryEscape(loc))
	}
	for _, tc := range []struct {
		name string
		in   policyIn
		// a followed chain ends at final with status and body
		final, body string
		// or is denied for reason, no request reaching deniedHost
		reason, deniedHost string
		error              string
		// what the last hop carried
		host, method, sentBody string
		headers                map[string]string
	}{
		{
			name: "within the service", in: policyIn{URL: to(302, "/allowed/landing"), Headers: map[string]string{"Cookie": "c=1"}},
			final: "https://api.example/allowed/landing", body: "GET api.example/allowed/landing ",
			host: "api.example", method: "GET", headers: map[string]string{"Authorization": "Bearer " + apiToken, "Cookie": "c=1"},
		},
		{
			name: "to another service: neither its credential nor the agent's cookie goes along", in: policyIn{URL: to(302, "https://other.example/landing"), Headers: map[string]string{"Cookie": "c=1", "X-Test": "t"}},
			final: "https://other.example/landing", body: "GET other.example/landing ",
			host: "other.example", method: "GET", headers: map[string]string{"Authorization": "", "Cookie": "", "X-Test": "t"},
		},
		{
			name: "to a host no service has", in: policyIn{URL: to(302, "https://evil.example/steal")},
			reason: "no-service", deniedHost: "evil.example",
		},
		{
			name: "to a method the other service does not allow", in: policyIn{Method: "POST", URL: to(307, "https://other.example/landing"), Body: "data"},
			reason: "deny-level", deniedHost: "other.example",
		},
		{
			name: "303 turns a POST into a GET without its body", in: policyIn{Method: "POST", URL: to(303, "/allowed/see"), Body: "data", Headers: map[string]string{"Content-Type": "text/plain"}},
			final: "https://api.example/allowed/see", body: "GET api.example/allowed/see ",
			host: "api.example", method: "GET", headers: map[string]string{"Content-Type": ""},
		},
		{
			name: "301 too", in: policyIn{Method: "POST", URL: to(301, "/allowed/moved"), Body: "data"},
			final: "https://api.example/allowed/moved", host: "api.example", method: "GET",
		},
		{
			name: "307 keeps the method and body", in: policyIn{Method: "POST", URL: to(307, "/allowed/temp"), Body: "data", Headers: map[string]string{"Content-Type": "text/plain"}},
			final: "https://api.example/allowed/temp", body: "POST api.example/allowed/temp data",
			host: "api.example", method: "POST", sentBody: "data", headers: map[string]string{"Content-Type": "text/plain"},
		},
		{
			name: "308 too", in: policyIn{Method: "POST", URL: to(308, "/allowed/perm"), Body: "data"},
			final: "https://api.example/allowed/perm", host: "api.example", method: "POST", sentBody: "data",
		},
		{
			name: "a relative Location", in: policyIn{URL: to(302, "../allowed/rel?x=1")},
			final: "https://api.example/allowed/rel?x=1", host: "api.example", method: "GET",
		},
		{
			name: "a Location parsers read differently", in: policyIn{URL: to(302, "https:evil.example/x")},
			reason: "bad-url", deniedHost: "evil.example",
		},
		{
			name: "ten redirects are followed", in: policyIn{URL: "https://api.example/redirect/chain?n=10"},
			final: "https://api.example/redirect/chain?n=0", body: "end of chain", host: "api.example", method: "GET",
		},
		{
			name: "eleven are not", in: policyIn{URL: "https://api.example/redirect/chain?n=11"},
			error: "stopped after 10 redirects",
		},
		{
			name: "an http.Client on Transport follows, each hop decided", in: policyIn{URL: to(302, "https://evil.example/steal"), Client: true},
			reason: "no-service", deniedHost: "evil.example",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, web := newPolicyHost(t)
			out := runPolicy(t, h, "test.policy", "redirect", tc.in)
			switch {
			case tc.reason != "":
				assert.True(t, out.Denied, "%+v", out)
				assert.Equal(t, tc.reason, out.Reason)
				assert.Zero(t, out.Status, "the 3xx is not returned")
				assert.Empty(t, web.requests(tc.deniedHost))
				types, _ := decisions(t, h.Events())
				assert.Equal(t, string(event.TypePolicyDeny), types[len(types)-1])
				return
			case tc.error != "":
				assert.Contains(t, out.Error, tc.error)
				return
			}
			require.Empty(t, out.Error)
			assert.Equal(t, 200, out.Status)
			assert.Equal(t, tc.final, out.FinalURL)
			if tc.body != "" {
				assert.Equal(t, tc.body, out.Body)
			}
			reqs := web.requests(tc.host)
			require.NotEmpty(t, reqs)
			last := reqs[len(reqs)-1]
			assert.Equal(t, tc.method, last.Method)
			assert.Equal(t, tc.sentBody, last.Body)
			for k, v := range tc.headers {
				assert.Equal(t, v, last.Header.Get(k), "header %s", k)
			}
			// One decision per hop.
			types, _ := decisions(t, h.Events())
			assert.Len(t, types, len(web.seen))
		})
	}

	t.Run("Transport returns the 3xx", func(t *testing.T) {
		h, web := newPolicyHost(t)
		out := runPolicy(t, h, "test.policy", "redirect", policyIn{URL: to(302, "https://evil.example/x"), Stream: true})
		assert.Equal(t, 302, out.Status)
		assert.Equal(t, []string{"https://evil.example/x"}, out.Headers["Location"])
		assert.Len(t, web.seen, 1)
	})
}

func TestTargetsOverrideServices(t *testing.T) {
	h, web := newPolicyHost(t)
	h.Targets = map[string]string{"api": "http://127.0.0.1:8080/", "unrelated": "http://127.0.0.1:1"}

	// The agent's code is unchanged: its requests to the service's origin
	// go to the override, which owns the service's secrets.
	for _, u := range []string{"https://api.example/allowed/x", "http://127.0.0.1:8080/allowed/x"} {
		out := runPolicy(t, h, "test.policy", "t", policyIn{URL: u})
		require.False(t, out.Denied, "%+v", out)
		assert.Equal(t, "GET 127.0.0.1:8080/allowed/x ", out.Body)
	}
	reqs := web.requests("127.0.0.1:8080")
	require.Len(t, reqs, 2)
	assert.Equal(t, "Bearer "+apiToken, reqs[0].Header.Get("Authorization"))
	assert.Empty(t, web.requests("api.example"))
	_, data := decisions(t, h.Events())
	assert.Equal(t, "http://127.0.0.1:8080/allowed/x", data[0].URL, "the event names what was sent")

	// As the hosts refuse to start with it, no run starts with an override
	// that is not an origin.
	h.Targets = map[string]string{"api": "ftp://nowhere"}
	_, err := h.Run(t.Context(), "test.policy", "t", policyIn{URL: "https://api.example/allowed/x"})
	assert.ErrorContains(t, err, "target override api=ftp://nowhere")
}

func TestManifestCarriesPolicies(t *testing.T) {
	var m wire.Manifest
	require.NoError(t, json.Unmarshal(agenttest.Manifest(), &m))
	policies := map[string]json.RawMessage{}
	for _, a := range m.Agents {
		policies[a.Name] = a.Policy
	}
	require.Contains(t, policies, "test.policy")
	assert.Nil(t, policies["test.nopolicy"])
	p, err := policy.Parse(policies["test.policy"])
	require.NoError(t, err)
	assert.Equal(t, []string{"API_TOKEN"}, p.Services[0].Secrets, "secret names")
	assert.NotContains(t, string(policies["test.policy"]), apiToken)
}

func TestAnInvalidPolicy(t *testing.T) {
	noop := func(*agent.Context, struct{}) (struct{}, error) { return struct{}{}, nil }
	assert.PanicsWithValue(t,
		`agent "test.oldpolicy": invalid policy: format version 0, want 1 (build policies with policy.New)`,
		func() { agent.Register("test.oldpolicy", noop, agent.WithPolicy(policy.Policy{})) })

	// The rest is found when the policy compiles: at the agent's first
	// request in a module, and before that by damper build and every host,
	// which refuse such a module (internal/host's TestInvalidPolicyInTheManifest).
	bad := policy.Policy{Version: policy.Version, Services: []policy.Service{{Name: "api", Target: "https://api.example/path", Level: policy.AllowAll}}}
	a := &guest.Agent{Name: "test.badpolicy", Policy: &bad}
	_, err := a.Engine(nil)
	assert.ErrorContains(t, err, `agent "test.badpolicy": invalid policy: policy: services[0] (api): target "https://api.example/path"`)
}
