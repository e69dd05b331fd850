package tests

import (
	"compress/gzip"
	"compress/zlib"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	stdhtml "html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/damperdev/damper/tests/agents"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// policyFakes are the loopback APIs probe.policy reaches: api owns the
// secret PROBE_API_TOKEN (deny-all but a few GET paths), other owns none
// (allow-read), and evil belongs to no service at all.
type policyFakes struct {
	secret           string
	api, other, evil *httptest.Server

	mu   sync.Mutex
	hits map[string]int // "api GET /limited" → count
	// leaks records every request that carried the secret anywhere but in
	// api's Authorization header.
	leaks []string
}

func newPolicyFakes(t *testing.T) *policyFakes {
	b := make([]byte, 18)
	_, err := rand.Read(b)
	require.NoError(t, err)
	// Generated per run, with characters that encode differently in base64,
	// percent-encoding and JSON, so every form the scrubber knows is tried.
	f := &policyFakes{secret: "tk+" + hex.EncodeToString(b) + "/=", hits: map[string]int{}}
	f.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.record(t, "api", r)
		if r.Header.Get("Authorization") != "Bearer "+f.secret {
			http.Error(w, "missing or wrong credential", http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/allowed/hello":
			fmt.Fprint(w, "hello from api")
		case "/allowed/echo":
			// A careless API that echoes the credential back, in every form.
			w.Header().Set("X-Echo", f.secret)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"auth":   r.Header.Get("Authorization"),
				"b64":    base64.StdEncoding.EncodeToString([]byte(f.secret)),
				"pct":    url.QueryEscape(f.secret),
				"padded": "<<" + f.secret + ">>",
			})
		case "/allowed/echo-all":
			// A hostile owner of the secret: every everyday encoding of it,
			// one per line, written in 5-byte pieces, each flushed.
			b := []byte(hostileEcho(f.secret))
			for len(b) > 0 {
				n := min(5, len(b))
				_, _ = w.Write(b[:n])
				w.(http.Flusher).Flush()
				b = b[n:]
			}
		case "/allowed/echo-gzip", "/allowed/echo-deflate":
			// The credential echoed back compressed, asked for or not: the
			// agent must get it decoded and scrubbed, or not at all.
			coding := strings.TrimPrefix(r.URL.Path, "/allowed/echo-")
			w.Header().Set("Content-Encoding", coding)
			var zw io.WriteCloser
			if coding == "gzip" {
				zw = gzip.NewWriter(w)
			} else {
				zw = zlib.NewWriter(w) // HTTP's "deflate" is the zlib format
			}
			fmt.Fprint(zw, "auth="+r.Header.Get("Authorization"))
			zw.Close()
		case "/limited":
			fmt.Fprint(w, "limited ok")
		case "/redirect-out":
			http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
		default:
			fmt.Fprint(w, "reached "+r.URL.Path)
		}
	}))
	f.other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.record(t, "other", r)
		fmt.Fprint(w, "landed")
	}))
	f.evil = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.record(t, "evil", r)
		fmt.Fprint(w, "exfiltrated")
	}))
	t.Cleanup(f.api.Close)
	t.Cleanup(f.other.Close)
	t.Cleanup(f.evil.Close)
	return f
}

func (f *policyFakes) record(t *testing.T, server string, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hits[server+" "+r.Method+" "+r.URL.Path]++
	for name, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, f.secret) && (server != "api" || name != "Authorization") {
				f.leaks = append(f.leaks, server+" header "+name)
			}
		}
	}
	if strings.Contains(string(body)+r.URL.String(), f.secret) {
		f.leaks = append(f.leaks, server+" "+r.URL.String())
	}
}

func (f *policyFakes) hitsOf(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key]
}

// policyOut is probe.policy's result.
type policyOut struct {
	Status  int                 `json:"status"`
	Body    string              `json:"body"`
	Headers map[string][]string `json:"headers"`
	Denied  bool                `json:"denied"`
	Reason  string              `json:"reason"`
	Rule    string              `json:"rule"`
	Error   string              `json:"error"`
}

// call runs probe.policy on agent instance id with one request, and checks
// that the host's whole answer holds no trace of the secret.
func (f *policyFakes) call(t *testing.T, c *client, id, method, rawURL string, headers map[string]string) policyOut {
	t.Helper()
	return f.run(t, c, id, agents.PolicyIn{Method: method, URL: rawURL, Headers: headers})
}

// run runs probe.policy with in and checks that no form of the secret
// reached the client.
func (f *policyFakes) run(t *testing.T, c *client, id string, in agents.PolicyIn) policyOut {
	t.Helper()
	payload, err := json.Marshal(in)
	require.NoError(t, err)
	r := c.post(t, "probe.policy", id, string(payload))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	f.assertNoSecret(t, string(r.body))
	for _, vs := range r.header {
		for _, v := range vs {
			f.assertNoSecret(t, v)
		}
	}
	var v struct {
		Result policyOut `json:"result"`
	}
	require.NoError(t, json.Unmarshal(r.body, &v))
	return v.Result
}

func (f *policyFakes) get(t *testing.T, c *client, id, path string, headers map[string]string) policyOut {
	t.Helper()
	return f.call(t, c, id, http.MethodGet, f.api.URL+path, headers)
}

func (f *policyFakes) assertNoSecret(t *testing.T, s string) {
	t.Helper()
	for _, form := range []string{
		f.secret,
		base64.StdEncoding.EncodeToString([]byte(f.secret)),
		url.QueryEscape(f.secret),
		strings.TrimSuffix(strings.TrimPrefix(f.secret, "tk+"), "/="), // the random core, however it is encoded around it
	} {
		require.NotContains(t, s, form, "the secret reached the agent or the client")
	}
}

func testPolicy(t *testing.T, c *client, f *policyFakes) {
	// The fakes serve both hosts in turn: count this host's requests only.
	f.mu.Lock()
	clear(f.hits)
	f.mu.Unlock()
	t.Run("allowed call carries the injected credential", func(t *testing.T) {
		out := f.get(t, c, "pol", "/allowed/hello", nil)
		require.False(t, out.Denied, "%+v", out)
		assert.Equal(t, 200, out.Status, "the fake refused the credential: %+v", out)
		assert.Equal(t, "hello from api", out.Body)
	})
	t.Run("the secret echoed back is scrubbed", func(t *testing.T) {
		out := f.get(t, c, "pol", "/allowed/echo", nil)
		require.Equal(t, 200, out.Status, "%+v", out)
		assert.Contains(t, out.Body, "[REDACTED:PROBE_API_TOKEN]")
		assert.Equal(t, []string{"[REDACTED:PROBE_API_TOKEN]"}, out.Headers["X-Echo"])
	})
	t.Run("the secret echoed in every everyday encoding is scrubbed, whole and streamed", func(t *testing.T) {
		for _, in := range []agents.PolicyIn{
			{URL: f.api.URL + "/allowed/echo-all"},
			{URL: f.api.URL + "/allowed/echo-all", Stream: true, ReadMax: 7},
			{URL: f.api.URL + "/allowed/echo-all", Stream: true, ReadMax: 1},
		} {
			out := f.run(t, c, "pol", in)
			require.Equal(t, 200, out.Status, "%+v", out)
			assert.Empty(t, recoverSecret(out.Body, f.secret), "stream=%v read_max=%d: the everyday decoders recover the secret from:\n%s", in.Stream, in.ReadMax, out.Body)
			assert.Equal(t, strings.Count(hostileEcho(f.secret), "x="), strings.Count(out.Body, "[REDACTED:PROBE_API_TOKEN]"), "every form redacted: %s", out.Body)
		}
	})
	t.Run("a compressed echo is refused, unread", func(t *testing.T) {
		// Both hosts ask for identity only and decode nothing: a coding the
		// server sends anyway never reaches the guest, scrubbed or not.
		for _, path := range []string{"/allowed/echo-gzip", "/allowed/echo-deflate"} {
			for _, hdr := range []map[string]string{nil, {"Range": "bytes=0-"}} {
				out := f.get(t, c, "pol", path, hdr)
				coding := strings.TrimPrefix(path, "/allowed/echo-")
				assert.Contains(t, out.Error, fmt.Sprintf("refusing a response with Content-Encoding %q", coding), "%s %v: %+v", path, hdr, out)
				assert.Empty(t, out.Body)
			}
		}
	})
	denied := []struct {
		name, method, url string
		headers           map[string]string
	}{
		{"method the rules do not allow", "POST", f.api.URL + "/allowed/hello", nil},
		{"path the rules do not allow", "GET", f.api.URL + "/admin", nil},
		{"dot segments into a denied path", "GET", f.api.URL + "/allowed/../admin", nil},
		{"encoded dot segments", "GET", f.api.URL + "/allowed/%2e%2E/admin", nil},
		{"encoded slash", "GET", f.api.URL + "/allowed%2f..%2fadmin", nil},
		{"userinfo", "GET", strings.Replace(f.api.URL, "http://", "http://user@", 1) + "/allowed/hello", nil},
		{"method override header", "GET", f.api.URL + "/allowed/hello", map[string]string{"X-HTTP-Method-Override": "DELETE"}},
		{"origin no service owns", "GET", f.evil.URL + "/x", nil},
		{"secret placeholder smuggled to another service", "GET", f.other.URL + "/landing", map[string]string{"X-Smuggle": "${secret:PROBE_API_TOKEN}"}},
		{"secret placeholder smuggled to its own service", "GET", f.api.URL + "/allowed/hello", map[string]string{"X-Smuggle": "${secret:PROBE_API_TOKEN}"}},
		{"redirect to an origin no service owns", "GET", f.api.URL + "/redirect-out?to=" + url.QueryEscape(f.evil.URL+"/steal"), nil},
		{"redirect to a denied path", "GET", f.api.URL + "/redirect-out?to=" + url.QueryEscape(f.api.URL+"/admin"), nil},
	}
	for _, tc := range denied {
		t.Run("denied: "+tc.name, func(t *testing.T) {
			out := f.call(t, c, "pol", tc.method, tc.url, tc.headers)
			assert.True(t, out.Denied, "%+v", out)
			assert.NotEmpty(t, out.Reason)
			assert.Empty(t, out.Error)
		})
	}
	t.Run("denied requests never reached a server", func(t *testing.T) {
		assert.Zero(t, f.hitsOf("api GET /admin"))
		assert.Zero(t, f.hitsOf("api POST /allowed/hello"))
		assert.Zero(t, f.hitsOf("evil GET /x")+f.hitsOf("evil GET /steal"))
		// Both redirects were asked for; neither next hop was sent.
		assert.Equal(t, 2, f.hitsOf("api GET /redirect-out"))
	})
	t.Run("an allowed redirect is followed, without the credential", func(t *testing.T) {
		out := f.get(t, c, "pol", "/redirect-out?to="+url.QueryEscape(f.other.URL+"/landing"), nil)
		require.False(t, out.Denied, "%+v", out)
		assert.Equal(t, 200, out.Status)
		assert.Equal(t, "landed", out.Body)
	})
	t.Run("the limit holds across runs, per agent instance", func(t *testing.T) {
		for i := range 2 {
			out := f.get(t, c, "limit-a", "/limited", nil)
			require.False(t, out.Denied, "call %d: %+v", i+1, out)
			require.Equal(t, "limited ok", out.Body)
		}
		before := f.hitsOf("api GET /limited")
		out := f.get(t, c, "limit-a", "/limited", nil)
		assert.True(t, out.Denied, "third call: %+v", out)
		assert.NotEmpty(t, out.Rule, "the denial names the limited rule")
		assert.Equal(t, before, f.hitsOf("api GET /limited"), "the denied call reached the server")
		assert.False(t, f.get(t, c, "limit-b", "/limited", nil).Denied, "another agent instance has its own count")
	})
	t.Run("no secret leaked to any server", func(t *testing.T) {
		f.mu.Lock()
		defer f.mu.Unlock()
		assert.Empty(t, f.leaks)
	})
}

// githubFake speaks the one GitHub REST call the repo example makes, and
// refuses any request without the token the host injects.
type githubFake struct {
	*httptest.Server
	token string
	mu    sync.Mutex
	calls []string // "METHOD path auth-ok"
}

func newGitHubFake(t *testing.T) *githubFake {
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	f := &githubFake{token: "ghp_fake" + hex.EncodeToString(b)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := r.Header.Get("Authorization") == "Bearer "+f.token
		f.mu.Lock()
		f.calls = append(f.calls, fmt.Sprintf("%s %s %t", r.Method, r.URL.Path, ok))
		f.mu.Unlock()
		if !ok {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		// GitHub ignores the case of owners and repositories.
		if r.Method != http.MethodGet || !strings.EqualFold(r.URL.Path, "/repos/damperdev/damper") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"full_name":"damperdev/damper","description":"Go agents on Cloudflare","stargazers_count":42}`)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *githubFake) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

// testPreset runs the repo example: the github read-only preset, its target
// pointed at a loopback fake by DAMPER_TARGETS, GITHUB_TOKEN injected by
// the host.
func testPreset(t *testing.T, c *client, gh *githubFake) {
	gh.takeCalls()
	res := c.run(t, "repo", "gh", `{"owner":"DamperDev","repo":"damper","star":true}`)
	assert.Equal(t, "damperdev/damper", res["full_name"])
	assert.EqualValues(t, 42, res["stars"])
	assert.Equal(t, "deny-level", res["star_denied"], "the read-only preset let a write through")
	// Owners match without case under the preset, and the write never left.
	assert.Equal(t, []string{"GET /repos/DamperDev/damper true"}, gh.takeCalls())
}

// hostileEcho writes secret in every everyday encoding the hosts scrub
// (docs/architecture.md, "Secrets"), one per line, each as a real encoder
// of its family writes it.
func hostileEcho(secret string) string {
	b := []byte(secret)
	pctAll := func(upper bool) string {
		var sb strings.Builder
		for _, c := range b {
			if upper {
				fmt.Fprintf(&sb, "%%%02X", c)
			} else {
				fmt.Fprintf(&sb, "%%%02x", c)
			}
		}
		return sb.String()
	}
	jsonU := func(upper bool) string {
		var sb strings.Builder
		for _, c := range b {
			if upper {
				fmt.Fprintf(&sb, "\\u%04X", c)
			} else {
				fmt.Fprintf(&sb, "\\u%04x", c)
			}
		}
		return sb.String()
	}
	html := func(format string) string {
		var sb strings.Builder
		for _, c := range b {
			fmt.Fprintf(&sb, format, c)
		}
		return sb.String()
	}
	wrap := func(s string, n int, nl string) string {
		var sb strings.Builder
		for len(s) > n {
			sb.WriteString(s[:n] + nl)
			s = s[n:]
		}
		return sb.String() + s
	}
	std := base64.StdEncoding.EncodeToString(b)
	js, _ := json.Marshal(secret)
	lines := []string{
		secret,
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		url.QueryEscape(secret),
		url.PathEscape(secret),
		pctAll(true),
		pctAll(false),
		string(js[1 : len(js)-1]),
		strings.ReplaceAll(string(js[1:len(js)-1]), "/", "\\/"),
		jsonU(false),
		jsonU(true),
		html("&#%d;"),
		html("&#x%x;"),
		html("&#X%X;"),
		html("&#x%04x;"),
		std,
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		wrap(base64.StdEncoding.EncodeToString([]byte(strings.Repeat(secret, 3))), 76, "\r\n"), // MIME
		wrap(base64.StdEncoding.EncodeToString([]byte(strings.Repeat(secret, 3))), 64, "\n"),   // PEM
		"Basic " + base64.StdEncoding.EncodeToString([]byte("bot:"+secret)),
		base64.StdEncoding.EncodeToString([]byte(`{"token":"` + secret + `"}`)),
	}
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString("x=" + l + "\n")
	}
	return sb.String()
}

// recoverSecret tries the everyday decoders on text and returns what
// recovered secret (hex, percent, JSON, HTML, base64 in both alphabets at
// every offset, with line breaks taken out), or "" when none did.
func recoverSecret(text, secret string) string {
	tries := map[string]string{"raw": text, "html": stdhtml.UnescapeString(text)}
	if s, err := url.QueryUnescape(text); err == nil {
		tries["query"] = s
	}
	if s, err := url.PathUnescape(text); err == nil {
		tries["path"] = s
	}
	var js string
	if err := json.Unmarshal([]byte(`"`+strings.NewReplacer("\r", "", "\n", "", `"`, `\"`).Replace(text)+`"`), &js); err == nil {
		tries["json"] = js
	}
	flat := strings.NewReplacer("\r", "", "\n", "").Replace(text)
	for _, run := range regexp.MustCompile(`[0-9a-fA-F]{2,}`).FindAllString(flat, -1) {
		for off := 0; off < 2 && off < len(run); off++ {
			r := run[off:]
			if d, err := hex.DecodeString(r[:len(r)/2*2]); err == nil {
				tries[fmt.Sprintf("hex at %d of %s", off, run)] = string(d)
			}
		}
	}
	for _, run := range regexp.MustCompile(`[A-Za-z0-9+/_=-]{4,}`).FindAllString(flat, -1) {
		for off := 0; off < 4 && off < len(run); off++ {
			r := strings.TrimRight(run[off:], "=")
			for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				for _, cut := range []string{r, r[:len(r)/4*4]} {
					if d, err := enc.DecodeString(cut); err == nil {
						tries[fmt.Sprintf("base64 at %d of %s", off, run)] = string(d)
						break
					}
				}
			}
		}
	}
	for how, s := range tries {
		if strings.Contains(s, secret) {
			return how
		}
	}
	return ""
}

// The check above can fail: the everyday decoders recover the secret from
// every form the hostile echo writes, each on its own.
func TestRecoverSecretFindsEveryForm(t *testing.T) {
	secret := "tk+0123456789abcdef0123456789abcdef0123/="
	for _, line := range strings.Split(hostileEcho(secret), "x=")[1:] {
		assert.NotEmpty(t, recoverSecret(line, secret), "no decoder recovers the secret from %q", line)
	}
}
