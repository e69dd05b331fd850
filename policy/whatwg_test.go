package policy_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/policy"
)

// nodeScript parses every input with Node's WHATWG URL parser (what
// workerd's fetch applies) and reduces what it would send to a form where
// the engine's documented normalizations are undone: merged slashes, decoded
// unreserved characters, upper-case escapes, characters WHATWG leaves raw but
// the engine encodes, a dropped trailing dot and an empty query. It is a
// separate implementation of those rules, in another language, on purpose.
const nodeScript = `
const items = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const UNRES = /^[A-Za-z0-9\-._~]$/;
function pct(s, keep) {
  const b = Buffer.from(s, 'utf8');
  let out = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    const hex = i + 2 < b.length ? String.fromCharCode(b[i+1], b[i+2]) : '';
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      const v = parseInt(hex, 16);
      const ch = String.fromCharCode(v);
      out += UNRES.test(ch) ? ch : '%' + v.toString(16).toUpperCase().padStart(2, '0');
      i += 2;
    } else if (c < 0x80 && (UNRES.test(String.fromCharCode(c)) || keep.includes(String.fromCharCode(c)))) {
      out += String.fromCharCode(c);
    } else {
      out += '%' + c.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}
function sent(raw, base) {
  let u;
  try { u = base ? new URL(raw, base) : new URL(raw); } catch (e) { return null; }
  return {
    href: u.href,
    protocol: u.protocol,
    host: u.hostname.replace(/\.$/, ''),
    port: u.port,
    path: pct(u.pathname.replace(/\/+/g, '/'), "!$&'()*+,;=:@/"),
    query: u.search.length > 1 ? pct(u.search.slice(1), "!$&()*+,;=:@/?") : '',
  };
}
process.stdout.write(JSON.stringify(items.map(it => ({
  raw: sent(it.raw, it.base),
  canon: it.canon ? sent(it.canon) : null,
}))));
`

type nodeIn struct {
	Raw   string `json:"raw"`
	Base  string `json:"base,omitempty"`
	Canon string `json:"canon,omitempty"`
}

type nodeURL struct {
	Href     string `json:"href"`
	Protocol string `json:"protocol"`
	Host     string `json:"host"`
	Port     string `json:"port"`
	Path     string `json:"path"`
	Query    string `json:"query"`
}

type nodeOut struct {
	Raw   *nodeURL `json:"raw"`
	Canon *nodeURL `json:"canon"`
}

// runNode runs one node process over all inputs.
func runNode(t *testing.T, in []nodeIn) []nodeOut {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not in PATH: the WHATWG differential test needs Node.js 20 or later (the project installs it): %v", err)
	}
	data, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.Command(node, "-e", nodeScript)
	cmd.Stdin = bytes.NewReader(data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "node: %s", stderr.String())
	var out []nodeOut
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &out))
	require.Len(t, out, len(in))
	return out
}

// whatwgExtra are URLs beyond the bypass table, chosen for the corners where
// URL parsers disagree.
var whatwgExtra = []string{
	"https://example.com/a/b/../c", "https://example.com/a/./b", "https://example.com/a/%2e/b",
	"https://example.com/a/%2E%2e/b", "https://example.com/a/.%2E", "https://example.com/a/..",
	"https://example.com/a/.", "https://example.com/a/b/..", "https://example.com/..",
	"https://example.com/a//b", "https://example.com//a", "https://example.com/a/..//b",
	"https://example.com/a//..", "https://example.com/%2e%2e//x", "https://example.com/a//../b",
	"https://example.com/%7Euser", "https://example.com/~user", "https://example.com/%41%42%43",
	"https://example.com/%c3%a9", "https://example.com/a+b?c+d", "https://example.com/a%20b",
	"https://example.com/a b", "https://example.com/a\"b", "https://example.com/a<b>",
	"https://example.com/a`b", "https://example.com/a^b", "https://example.com/a|b",
	"https://example.com/a'b", "https://example.com/a!$&()*+,=:@b", "https://example.com/a%2fb",
	"https://example.com/a%5cb", "https://example.com/€", "https://example.com/%",
	"https://example.com/?a'b", "https://example.com/?a`b", "https://example.com/?a{b}",
	"https://example.com/?a|b", "https://example.com/?a^b", "https://example.com/?a\"b",
	"https://example.com/?a<b", "https://example.com/?€", "https://example.com/?a=%e2%82%ac",
	"https://example.com/?q=%", "https://example.com/?%zz", "https://example.com/?q=a%26b",
	"https://example.com/?a=1&a=2", "https://example.com/?/a?b", "https://example.com/?%2F%3f",
	"https://example.com/?", "https://example.com/#", "https://example.com/?#", "https://example.com/a?b#c?d",
	"https://EXAMPLE.com/A", "https://example.com:8080", "http://example.com:80/", "https://example.com:443",
	"http://example.com:443/", "https://example.com:08080/", "https://example.com./",
	"https://1.2.3.4/", "https://0x01020304/", "https://1.2.3/", "https://01.02.03.04/",
	"https://1.1.1.1./", "https://0x7f.1/", "https://0X7F.1/", "https://00000000000000000000001.0.0.1/",
	"https://[::]/", "https://[1:0:0:0:0:0:0:0]/", "https://[1:0:0:1:0:0:0:1]/", "https://[1:0:0:0:1:0:0:1]/",
	"https://[1:2:3:4:5:6:7:0]/", "https://[0:1:0:1:0:1:0:1]/", "https://[::ffff:0:0]/",
	"https://[2001:db8::1]/", "https://[2001:DB8::1]/", "https://[::1.2.3.4]/",
	"https://[0:0:0:0:0:ffff:1.2.3.4]/", "https://[::ffff:1.2.3.4]:8443/",
	"https://ex_ample.com/", "https://-example.com/", "https://example-.com/", "https://a--b.example/",
	"https://bücher.example/", "https://BÜCHER.example/", "https://xn--bcher-kva.example/",
	"https://XN--BCHER-KVA.example/", "https://faß.example/", "https://xn--zca.example/",
	"https://ǅ.example/", "https://a\u0301.example/", "https://ａｂｃ.example/", "https://münchen.de/",
	"https://例え.テスト/", "https://ex\u00adample.com/", "https://exa\u200dmple.com/",
	"https://example.com\u3002/", "https://ⓔxample.com/", "https://ｅｘａｍｐｌｅ．ｃｏｍ/",
	"https://xn--a.example/", "https://xn--.example/", "https://xn--ls8h.example/", "https://💩.example/",
	"https://xn--nxasmq6b.example/", "https://\u0661\u0662.example/", "https://a\u0661.example/",
	"https://\u05d0\u05d1.example/", "https://a\u05d0.example/",
	"https://example.com/\u00e9?\u00e9#\u00e9", "https://example.com/%F0%9F%92%A9",
	"https://example.com/a/%2e%2e%2f", "https://example.com/;a", "https://example.com/a;b",
}

func TestWHATWGDifferential(t *testing.T) {
	e := fixture(t)
	type input struct {
		in       nodeIn
		req      policy.Request
		decision policy.Decision
	}
	var inputs []input
	for i := range table {
		r := &table[i]
		req := r.request(t)
		in := nodeIn{Raw: r.url, Base: r.base}
		inputs = append(inputs, input{in: in, req: req})
	}
	for _, u := range whatwgExtra {
		inputs = append(inputs, input{in: nodeIn{Raw: u}, req: policy.Request{Method: "GET", URL: u}})
	}
	var ins []nodeIn
	for i := range inputs {
		it := &inputs[i]
		it.decision = e.Evaluate(&it.req, nil)
		if it.req.URL != "" {
			if c, err := policy.Canonicalize(it.req.URL); err == nil {
				it.in.Canon = c
			}
		}
		ins = append(ins, it.in)
	}
	out := runNode(t, ins)

	accepted, compared := 0, 0
	for i, it := range inputs {
		o := out[i]
		if it.in.Canon != "" {
			accepted++
			// Every canonical URL is a fixed point of WHATWG parsing.
			require.NotNil(t, o.Canon, "node cannot parse canonical %q", it.in.Canon)
			require.Equal(t, it.in.Canon, o.Canon.Href, "canonical URL is not a WHATWG fixed point")
			// What the engine accepts, WHATWG accepts too, and both send
			// the request to the same place.
			require.NotNil(t, o.Raw, "engine accepts %q (base %q), which WHATWG rejects", it.in.Raw, it.in.Base)
			compared++
			want, got := *o.Raw, *o.Canon
			want.Href, got.Href = "", ""
			require.Equal(t, want, got, "raw %q (base %q) is sent elsewhere than canonical %q", it.in.Raw, it.in.Base, it.in.Canon)
		}
		if it.decision.Allow {
			require.Equal(t, it.in.Canon, it.decision.URL)
			require.NotNil(t, o.Canon)
			require.Equal(t, it.decision.URL, o.Canon.Href, "allowed URL is not a WHATWG fixed point")
		}
	}
	t.Logf("%d inputs, %d canonicalized and compared with WHATWG", len(inputs), compared)
	require.Positive(t, accepted)
}
