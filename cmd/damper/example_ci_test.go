package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
)

// The GitHub Actions example calls damper run with flags it has, in the
// order it takes them: the flags after the arguments.
func TestCIExampleUsesRealFlags(t *testing.T) {
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, "examples", "ci", "triage.yml"))
	require.NoError(t, err)
	workflow := string(b)
	require.Contains(t, workflow, "go tool damper run triage @triage/payload.json")
	code, _, help := damper(t, "", "run", "-h")
	require.Equal(t, 0, code)
	flags := regexp.MustCompile(`(?m)^\s+--([a-z-]+)`).FindAllStringSubmatch(workflow, -1)
	require.NotEmpty(t, flags)
	for _, f := range flags {
		assert.Contains(t, help, "  -"+f[1]+" ", "damper run has --%s", f[1])
	}
	for _, want := range []string{"--sandbox local", "secrets.ANTHROPIC_API_KEY", "actions/upload-artifact", "--out triage/result.json"} {
		assert.True(t, strings.Contains(workflow, want), "the workflow has %q", want)
	}
	assert.NotRegexp(t, `\$\{\{ github\.event\.issue\.(title|body) \}\}[^\n]*\n\s*(run|jq)`, workflow, "issue text only through env")
}
