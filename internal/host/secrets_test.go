package host

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/hosttest"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
)

// secretsFor compiles a manifest with one agent "a" of policy p, as
// loadSecrets does for a Host.
func secretsFor(t *testing.T, p policy.Policy, targets map[string]string, env map[string]string) *agentSecrets {
	t.Helper()
	raw, err := json.Marshal(p)
	require.NoError(t, err)
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	all, _, err := loadSecrets(wire.Manifest{Agents: []wire.AgentEntry{{Name: "a", Policy: raw}}}, targets, lookup, testLogger(t))
	require.NoError(t, err)
	return all["a"]
}

func TestFetchSubstitutesSecretsOnlyForTheirOwners(t *testing.T) {
	secret, other := hosttest.FakeSecret(t), hosttest.FakeSecret(t)
	api, elsewhere, basic := hosttest.NewRecorder(t, nil), hosttest.NewRecorder(t, nil), hosttest.NewRecorder(t, nil)
	p, err := policy.New(
		policy.NewService("api", "https://api.example").Credential("Authorization", "Bearer ${secret:API_TOKEN}").Secrets("UNSET"),
		policy.NewService("elsewhere", "https://elsewhere.example").Secrets("OTHER_TOKEN"),
		policy.NewService("basic", "https://basic.example").Credential("Authorization", "${basic:bot:BASIC_TOKEN}"),
	)
	require.NoError(t, err)
	s := secretsFor(t, p,
		map[string]string{"api": api.URL, "elsewhere": elsewhere.URL, "basic": basic.URL},
		map[string]string{"API_TOKEN": secret, "OTHER_TOKEN": other, "BASIC_TOKEN": secret, "NOT_IN_POLICY": "x"})
	assert.Equal(t, map[string]string{"API_TOKEN": secret, "OTHER_TOKEN": other, "BASIC_TOKEN": secret}, s.values,
		"only the policy's secrets are read")

	for _, tc := range []struct {
		name    string
		srv     *hosttest.Recorder
		secrets *agentSecrets
		url     string
		header  string
		sent    string // the header as sent; empty: refused
		message string // the refusal names
	}{
		{"owned", api, s, api.URL + "/x", "Bearer ${secret:API_TOKEN}", "Bearer " + secret, ""},
		{"basic", basic, s, basic.URL + "/x", "${basic:bot:BASIC_TOKEN}", "Basic " + base64.StdEncoding.EncodeToString([]byte("bot:"+secret)), ""},
		{"owned by another service", elsewhere, s, elsewhere.URL + "/x", "Bearer ${secret:API_TOKEN}", "", "secret API_TOKEN for " + elsewhere.URL},
		{"owned, not set", api, s, api.URL + "/x", "${secret:UNSET}", "", "secret UNSET is not configured"},
		{"in no policy", api, s, api.URL + "/x", "${secret:NOT_IN_POLICY}", "", "NOT_IN_POLICY"},
		{"agent without a policy", api, noSecrets, api.URL + "/x", "${secret:API_TOKEN}", "", "API_TOKEN"},
		{"not canonical", api, s, api.URL + "/a/../x", "Bearer ${secret:API_TOKEN}", "", "not a canonical URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.srv.Requests())
			p, tk := performerTask(t)
			tk.secrets = tc.secrets
			_, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{Method: "GET", URL: tc.url, Headers: []wire.Header{{"Authorization", tc.header}}})
			reqs := tc.srv.Requests()
			if tc.sent != "" {
				require.Nil(t, werr)
				require.Len(t, reqs, before+1)
				assert.Equal(t, tc.sent, reqs[before].Header.Get("Authorization"))
				return
			}
			require.NotNil(t, werr)
			assert.Equal(t, wire.ErrFetch, werr.Type)
			assert.Contains(t, werr.Message, tc.message)
			for _, v := range []string{secret, other} {
				assert.NotContains(t, werr.Message, v)
			}
			assert.Len(t, reqs, before, "the server never saw the request")
		})
	}
}

func TestResponsesAreScrubbed(t *testing.T) {
	secret := hosttest.FakeSecret(t)
	p, err := policy.New(policy.NewService("api", "https://api.example").
		Level(policy.AllowAll).
		Credential("Authorization", "${basic:bot:API_TOKEN}"))
	require.NoError(t, err)
	for _, piece := range []int{1, 7, 13, 64, 1 << 20} {
		srv := hosttest.NewRecorder(t, hosttest.EchoSecret(secret, piece, "bot"))
		s := secretsFor(t, p, map[string]string{"api": srv.URL}, map[string]string{"API_TOKEN": secret})
		for _, max := range []int{1, 5, 16, 4096} {
			t.Run(fmt.Sprintf("piece=%d/read=%d", piece, max), func(t *testing.T) {
				p, tk := performerTask(t)
				tk.secrets = s
				args := wire.FetchArgs{Method: "GET", URL: srv.URL + "/", Headers: []wire.Header{{"Authorization", "${basic:bot:API_TOKEN}"}}, Stream: true}
				raw, werr := perform(t, p, tk, wire.EffectFetch, args)
				require.Nil(t, werr)
				var v wire.FetchValue
				require.NoError(t, json.Unmarshal(raw, &v))
				var got []byte
				for {
					raw, werr := perform(t, p, tk, wire.EffectRead, wire.ReadArgs{Handle: v.Handle, Max: max})
					require.Nil(t, werr)
					var r wire.ReadValue
					require.NoError(t, json.Unmarshal(raw, &r))
					require.LessOrEqual(t, len(r.Body), max)
					got = append(got, r.Body...)
					if r.EOF {
						break
					}
				}
				// And the same body whole.
				args.Stream = false
				raw, werr = perform(t, p, tk, wire.EffectFetch, args)
				require.Nil(t, werr)
				var whole wire.FetchValue
				require.NoError(t, json.Unmarshal(raw, &whole))

				for _, out := range []string{string(got), string(whole.Body), fmt.Sprint(v.Headers), fmt.Sprint(whole.Headers)} {
					for _, e := range hosttest.Encodings(secret, "bot") {
						assert.NotContains(t, out, e)
					}
					assert.Contains(t, out, "[REDACTED:API_TOKEN]")
				}
				assert.Equal(t, string(whole.Body), string(got), "streamed or whole, the same text")
			})
		}
	}
}

// A policy that does not compile stops the host (and damper build, which
// reads the manifest the same way), naming the agent and the mistake.
func TestInvalidPolicyInTheManifest(t *testing.T) {
	for _, tc := range []struct{ policy, want string }{
		{`{"version":1,"services":[{"name":"api","target":"https://api.example/path","level":"allow-all"}]}`, `agent a: invalid policy: policy: services[0] (api): target "https://api.example/path"`},
		{`{"version":1,"services":[],"extra":1}`, `agent a: the manifest's policy`},
		{`{"version":2,"services":[]}`, `agent a: the manifest's policy`},
	} {
		m := wire.Manifest{Agents: []wire.AgentEntry{{Name: "a", Policy: json.RawMessage(tc.policy)}}}
		_, _, err := loadSecrets(m, nil, os.LookupEnv, testLogger(t))
		assert.ErrorContains(t, err, tc.want)
	}
}

func TestParseTargets(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want map[string]string
		err  string
	}{
		{"", map[string]string{}, ""},
		{"github=http://127.0.0.1:8081", map[string]string{"github": "http://127.0.0.1:8081"}, ""},
		{" a=https://A.example.com:443/ , b=http://[::1]:9 ,", map[string]string{"a": "https://a.example.com", "b": "http://[::1]:9"}, ""},
		{"a=http://x.test,a=http://y.test", nil, "overridden twice"},
		{"a", nil, "want name=scheme://host[:port]"},
		{"=http://x.test", nil, "want name=scheme://host[:port]"},
		{"a=http://x.test/path", nil, "no path"},
		{"a=ftp://x.test", nil, "a=ftp://x.test"},
		{"Bad_Name=http://x.test", nil, "Bad_Name"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseTargets(tc.spec)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// Without a transport of its own, the core dials the origins of the
// policies' services, with the overrides applied, whatever their address,
// and otherwise only public addresses: a name that leads to loopback is
// refused before anything is sent.
func TestDefaultTransportDialsOnlyTargetsAndPublicAddresses(t *testing.T) {
	srv := hosttest.NewRecorder(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "reached") })
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	p, err := policy.New(policy.NewService("api", "https://api.example").Level(policy.AllowAll))
	require.NoError(t, err)
	raw, err := json.Marshal(p)
	require.NoError(t, err)
	c, err := New(wire.Manifest{ABI: wire.Version, Agents: []wire.AgentEntry{{Name: "a", Policy: raw}}},
		Options{Logger: testLogger(t), Targets: map[string]string{"api": srv.URL}})
	require.NoError(t, err)
	inst := c.NewInstance("a", "i", "")
	t.Cleanup(func() { inst.Close() })
	for _, tc := range []struct {
		url, refused string
	}{
		{srv.URL + "/", ""},
		{"http://localhost:" + port + "/", "loopback"},
		{"http://[::ffff:7f00:1]:" + port + "/", "loopback"},
	} {
		tk := c.NewTask("t", "r", inst, testLogger(t))
		v, werr := perform(t, c, tk, wire.EffectFetch, wire.FetchArgs{Method: "GET", URL: tc.url})
		tk.Release()
		if tc.refused == "" {
			require.Nil(t, werr, tc.url)
			assert.Contains(t, string(v), base64.StdEncoding.EncodeToString([]byte("reached")))
			continue
		}
		require.NotNil(t, werr, tc.url)
		assert.Equal(t, wire.ErrFetch, werr.Type)
		assert.Contains(t, werr.Message, tc.refused)
		assert.Contains(t, werr.Message, "DAMPER_TARGETS")
	}
	assert.Len(t, srv.Requests(), 1, "only the target was reached")
}
