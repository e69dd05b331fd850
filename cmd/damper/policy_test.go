package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
)

func TestPolicyCheck(t *testing.T) {
	t.Setenv("DAMPER_TARGETS", "")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	query := write("query.json", `{"query":"query { viewer { login } }"}`)
	mutation := write("mutation.json", `{"query":"# just a query\nmutation { addStar(input:{starrableId:\"x\"}) { clientMutationId } }","operationName":"q"}`)
	own := write("policy.json", `{"version":1,"services":[{"name":"api","target":"https://api.example.com","level":"deny-all",
		"allow":[{"id":"read-items","methods":["GET"],"path":"/items/*"}]}]}`)
	broken := write("broken.json", `{"version":1,"services":[{"name":"api","target":"https://api.example.com","level":"deny-all","typo":1}]}`)

	cases := []struct {
		name string
		args []string
		code int
		out  []string // substrings of stdout
	}{
		{"preset allows a read", []string{"--preset", "github:read-only", "--url", "https://api.github.com/repos/o/r"}, 0,
			[]string{"allow", "https://api.github.com/repos/o/r", "Bearer ${secret:GITHUB_TOKEN}"}},
		{"decides on the canonical URL", []string{"--preset", "github:read-only", "--url", "HTTPS://API.GITHUB.COM.:443/repos/o/r/./x/../issues"}, 0,
			[]string{"https://api.github.com/repos/o/r/issues"}},
		{"preset denies a write", []string{"--preset", "github:read-only", "--method", "POST", "--url", "https://api.github.com/repos/o/r/issues"}, 1,
			[]string{"deny", "deny-level"}},
		{"graphql query allowed", []string{"--preset", "github:read-only", "--method", "POST", "--url", "https://api.github.com/graphql", "--body", query, "--header", "Content-Type:application/json"}, 0,
			[]string{"allow", "github-graphql-query"}},
		{"graphql mutation after a comment denied", []string{"--preset", "github:read-only", "--method", "POST", "--url", "https://api.github.com/graphql", "--body", mutation, "--header", "Content-Type:application/json"}, 1,
			[]string{"deny"}},
		{"git push denied", []string{"--preset", "github:read-only", "--method", "POST", "--url", "https://github.com/o/r.git/git-receive-pack"}, 1,
			[]string{"deny", "github-git-receive-pack"}},
		{"method override denied", []string{"--preset", "github:read-only", "--url", "https://api.github.com/repos/o/r", "--header", "X-HTTP-Method-Override:DELETE"}, 1,
			[]string{"deny"}},
		{"host suffix confusion denied", []string{"--preset", "github:read-only", "--url", "https://api.github.com.evil.test/repos/o/r"}, 1,
			[]string{"deny"}},
		{"policy file allows", []string{"--policy", own, "--url", "https://api.example.com/items/7"}, 0, []string{"read-items"}},
		{"policy file denies traversal", []string{"--policy", own, "--url", "https://api.example.com/items/7/../../admin"}, 1, []string{"deny"}},
		{"no url", []string{"--preset", "github:read-only"}, 2, nil},
		{"no policy", []string{"--url", "https://api.github.com/"}, 2, nil},
		{"unknown preset", []string{"--preset", "gitlab", "--url", "https://gitlab.com/"}, 2, nil},
		{"malformed policy file", []string{"--policy", broken, "--url", "https://api.example.com/items/7"}, 2, nil},
		{"missing body file", []string{"--preset", "github:read-only", "--url", "https://api.github.com/graphql", "--body", filepath.Join(dir, "nope")}, 2, nil},
		{"malformed header", []string{"--preset", "github:read-only", "--url", "https://api.github.com/", "--header", "no-colon"}, 2, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := policyCmd(append([]string{"check"}, tc.args...), &stdout, &stderr)
			require.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			for _, s := range tc.out {
				assert.Contains(t, stdout.String(), s)
			}
			if tc.code == 2 {
				assert.NotEmpty(t, stderr.String(), "bad input without a message")
			}
		})
	}
}

func TestPolicyCheckJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := policyCmd([]string{"check", "--json", "--preset", "github:read-only", "--method", "delete", "--url", "https://api.github.com/repos/o/r"}, &stdout, &stderr)
	require.Equal(t, 1, code, stderr.String())
	var d struct {
		Allow   bool   `json:"allow"`
		Reason  string `json:"reason"`
		Service string `json:"service"`
		Method  string `json:"method"`
		URL     string `json:"url"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &d), stdout.String())
	assert.Equal(t, false, d.Allow)
	assert.Equal(t, "github", d.Service)
	assert.Equal(t, "DELETE", d.Method)
	assert.Equal(t, "https://api.github.com/repos/o/r", d.URL)
	assert.NotEmpty(t, d.Reason)
}

// writeManifest writes a manifest as damper build does: the module's
// agents with their policies' JSON.
func writeManifest(t *testing.T, dir string, agents ...wire.AgentEntry) string {
	t.Helper()
	data, err := json.MarshalIndent(wire.Manifest{ABI: wire.Version, Agents: agents}, "", "  ")
	require.NoError(t, err)
	path := filepath.Join(dir, "manifest.json")
	require.NoError(t, os.WriteFile(path, append(data, '\n'), 0o644))
	return path
}

func TestPolicyCheckAgentAndTargets(t *testing.T) {
	t.Setenv("DAMPER_TARGETS", "")
	dir := t.TempDir()
	p, err := policy.New(policy.NewService("api", "https://api.example.test").
		Credential("Authorization", "Bearer ${secret:API_TOKEN}").
		Allow(policy.On("/items/*", "GET").ID("read-items")))
	require.NoError(t, err)
	pj, err := json.Marshal(p)
	require.NoError(t, err)
	manifest := writeManifest(t, dir,
		wire.AgentEntry{Name: "hello"},
		wire.AgentEntry{Name: "probe", Policy: pj})
	emptyDir := t.TempDir()
	empty := writeManifest(t, emptyDir)
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"abi":1,"agents":[{"name":"probe","policy":{"version":1,"services":[],"typo":1}}]}`), 0o644))

	cases := []struct {
		name string
		env  string // $DAMPER_TARGETS
		args []string
		code int
		out  []string // substrings of stdout
		err  []string // substrings of stderr
	}{
		{"agent's policy allows", "", []string{"--manifest", manifest, "--agent", "probe", "--url", "https://api.example.test/items/7"}, 0,
			[]string{"allow", "read-items", "https://api.example.test/items/7", "${secret:API_TOKEN}"}, nil},
		{"agent's policy denies", "", []string{"--manifest", manifest, "--agent", "probe", "--method", "DELETE", "--url", "https://api.example.test/items/7"}, 1,
			[]string{"deny", "deny-level"}, nil},
		{"agent's policy with a target override", "", []string{"--manifest", manifest, "--agent", "probe", "--target", "api=http://127.0.0.1:9000", "--url", "https://api.example.test/items/7"}, 0,
			[]string{"allow", "http://127.0.0.1:9000/items/7", "${secret:API_TOKEN}"}, nil},
		{"the override's origin itself", "", []string{"--manifest", manifest, "--agent", "probe", "--target", "api=http://127.0.0.1:9000", "--url", "http://127.0.0.1:9000/items/7"}, 0,
			[]string{"allow", "http://127.0.0.1:9000/items/7"}, nil},
		{"another loopback port stays denied", "", []string{"--manifest", manifest, "--agent", "probe", "--target", "api=http://127.0.0.1:9000", "--url", "http://127.0.0.1:9001/items/7"}, 1,
			[]string{"deny", "ip-literal"}, nil},
		{"override from the environment", "api=http://127.0.0.1:9100", []string{"--manifest", manifest, "--agent", "probe", "--url", "https://api.example.test/items/7"}, 0,
			[]string{"http://127.0.0.1:9100/items/7"}, nil},
		{"--target wins over the environment", "api=http://127.0.0.1:9100", []string{"--manifest", manifest, "--agent", "probe", "--target", "api=http://127.0.0.1:9200", "--url", "https://api.example.test/items/7"}, 0,
			[]string{"http://127.0.0.1:9200/items/7"}, nil},
		{"preset with a target override", "", []string{"--preset", "github", "--target", "github=http://127.0.0.1:8081", "--url", "https://api.github.com/user"}, 0,
			[]string{"allow", "http://127.0.0.1:8081/user", "Bearer ${secret:GITHUB_TOKEN}"}, nil},
		{"override naming no service is noted", "", []string{"--preset", "github", "--target", "nope=http://127.0.0.1:8081", "--url", "https://api.github.com/user"}, 0,
			[]string{"https://api.github.com/user"}, []string{"nope=http://127.0.0.1:8081 names no service of this policy"}},
		{"malformed --target", "", []string{"--preset", "github", "--target", "github", "--url", "https://api.github.com/user"}, 2,
			nil, []string{"--target", "want name=scheme://host[:port]"}},
		{"--target with a path", "", []string{"--preset", "github", "--target", "github=http://127.0.0.1:8081/v1", "--url", "https://api.github.com/user"}, 2,
			nil, []string{"no path"}},
		{"malformed $DAMPER_TARGETS", "github", []string{"--preset", "github", "--url", "https://api.github.com/user"}, 2,
			nil, []string{"DAMPER_TARGETS"}},
		{"unknown agent lists the agents", "", []string{"--manifest", manifest, "--agent", "nope", "--url", "https://api.example.test/"}, 2,
			nil, []string{`agent "nope" is not in`, "its agents: hello, probe"}},
		{"manifest without agents", "", []string{"--manifest", empty, "--agent", "nope", "--url", "https://api.example.test/"}, 2,
			nil, []string{"lists no agents"}},
		{"agent without a policy", "", []string{"--manifest", manifest, "--agent", "hello", "--url", "https://api.example.test/"}, 2,
			nil, []string{"agent hello", "has no policy"}},
		{"manifest missing", "", []string{"--manifest", filepath.Join(dir, "nope.json"), "--agent", "probe", "--url", "https://api.example.test/"}, 2,
			nil, []string{"nope.json does not exist", "run damper build"}},
		{"agent's policy malformed", "", []string{"--manifest", bad, "--agent", "probe", "--url", "https://api.example.test/"}, 2,
			nil, []string{"agent probe", `unknown field "typo"`}},
		{"--manifest without --agent", "", []string{"--manifest", manifest, "--url", "https://api.example.test/"}, 2,
			nil, []string{"--manifest needs --agent"}},
		{"two policy sources", "", []string{"--manifest", manifest, "--agent", "probe", "--preset", "github", "--url", "https://api.example.test/"}, 2,
			nil, []string{"exactly one of --policy, --preset and --agent"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DAMPER_TARGETS", tc.env)
			var stdout, stderr bytes.Buffer
			code := policyCmd(append([]string{"check"}, tc.args...), &stdout, &stderr)
			require.Equal(t, tc.code, code, "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			for _, s := range tc.out {
				assert.Contains(t, stdout.String(), s)
			}
			for _, s := range tc.err {
				assert.Contains(t, stderr.String(), s)
			}
			if tc.code == 2 {
				assert.NotEmpty(t, stderr.String(), "bad input without a message")
			}
		})
	}
}

// Without --manifest, --agent reads build/manifest.json, where damper build
// writes it, and says so when it is not there.
func TestPolicyCheckDefaultManifest(t *testing.T) {
	t.Setenv("DAMPER_TARGETS", "")
	dir := t.TempDir()
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	code := policyCmd([]string{"check", "--agent", "probe", "--url", "https://api.example.test/"}, &stdout, &stderr)
	require.Equal(t, 2, code)
	assert.Contains(t, stderr.String(), filepath.Join("build", "manifest.json")+" does not exist: run damper build first")

	require.NoError(t, os.Mkdir("build", 0o755))
	p, err := policy.New(policy.NewService("api", "https://api.example.test").Level(policy.AllowRead))
	require.NoError(t, err)
	pj, err := json.Marshal(p)
	require.NoError(t, err)
	writeManifest(t, "build", wire.AgentEntry{Name: "probe", Policy: pj})
	stdout.Reset()
	stderr.Reset()
	code = policyCmd([]string{"check", "--agent", "probe", "--url", "https://api.example.test/"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "allow-level")
}
