package policy

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHostOwnedHeader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		owned bool
	}{
		{"Host", true},
		{"host", true},
		{"Accept-Encoding", true},
		{"ACCEPT-ENCODING", true},
		{"Content-Length", true},
		{"Transfer-Encoding", true},
		{"Connection", true},
		{"TE", true},
		{"Upgrade", true},
		{"Trailer", true},
		{"Keep-Alive", true},
		{"Proxy-Authorization", true},
		{"proxy-connection", true},
		{"X-Forwarded-For", true},
		{"Forwarded", true},
		{"Via", true},
		{"Expect", true},
		{"Authorization", false},
		{"Accept", false},
		{"Range", false},
		{"Content-Type", false},
		{"Proxy", false},       // not the proxy- prefix
		{"X-Forwarded", false}, // nor x-forwarded-
		{"Hostname", false},    // a name, not a prefix
		{"Accept-Encodings", false},
		{"", false},
	} {
		assert.Equal(t, tc.owned, HostOwnedHeader(tc.name), tc.name)
	}
}

// The Workers host refuses the same headers (worker/headers.js): one list
// per language, held equal here, since a header only one host refuses would
// reach a server from the other.
func TestHostOwnedHeadersMatchTheWorker(t *testing.T) {
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node (Node.js >= 20) is required: it reads the Workers host's list")
	js, err := filepath.Abs(filepath.Join("..", "worker", "headers.js"))
	require.NoError(t, err)
	script := `const m = await import(process.argv[1]);
process.stdout.write(JSON.stringify({headers: m.HOST_OWNED_HEADERS, prefixes: m.HOST_OWNED_PREFIXES}));`
	out, err := exec.Command(node, "--input-type=module", "-e", script, "file://"+filepath.ToSlash(js)).Output()
	require.NoError(t, err)
	var got struct{ Headers, Prefixes []string }
	require.NoError(t, json.Unmarshal(out, &got))
	assert.ElementsMatch(t, hostOwnedHeaders, got.Headers, "worker/headers.js HOST_OWNED_HEADERS")
	assert.ElementsMatch(t, hostOwnedPrefixes, got.Prefixes, "worker/headers.js HOST_OWNED_PREFIXES")
}

// Range is not in the default allowlist: against an origin that reflects
// its credential, ranges would let a model read it back a few bytes at a
// time (docs/redteam.md). A service that serves ranges names it.
func TestRangeIsNotAllowedByDefault(t *testing.T) {
	for _, tc := range []struct {
		svc  *ServiceBuilder
		sent bool
	}{
		{NewService("api", "https://api.example").Level(AllowAll).Credential("Authorization", "Bearer ${secret:T}"), false},
		{NewService("api", "https://api.example").Level(AllowAll), false},
		{NewService("api", "https://api.example").Level(AllowAll).AddHeaders("Range"), true},
	} {
		p, err := New(tc.svc)
		require.NoError(t, err)
		e, err := Compile(p)
		require.NoError(t, err)
		d := e.Evaluate(&Request{URL: "https://api.example/file", Headers: []Header{{Name: "Range", Value: "bytes=0-5"}, {Name: "Accept", Value: "*/*"}}}, nil)
		require.True(t, d.Allow)
		var sent []string
		for _, h := range d.Headers {
			sent = append(sent, strings.ToLower(h.Name))
		}
		assert.Equal(t, tc.sent, slices.Contains(sent, "range"), "%v", sent)
		assert.Contains(t, sent, "accept")
	}
}
