package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPolicyCheck(t *testing.T) {
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
