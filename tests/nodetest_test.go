package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
)

// TestWorkerUnitTests runs the Workers host's own unit tests
// (worker/*.test.mjs) with node's test runner, so that `go test ./...`
// covers them too.
func TestWorkerUnitTests(t *testing.T) {
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node (Node.js >= 20) is required: it runs the Workers host's unit tests")
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	files, err := filepath.Glob(filepath.Join(root, "worker", "*.test.mjs"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	// Read the sources here too, so that go test's result cache sees what
	// node reads: an edit to worker/ runs the test again.
	js, err := filepath.Glob(filepath.Join(root, "worker", "*.js"))
	require.NoError(t, err)
	for _, f := range append(js, files...) {
		_, err := os.ReadFile(f)
		require.NoError(t, err)
	}
	cmd := exec.Command(node, append([]string{"--test", "--test-reporter=spec"}, files...)...)
	cmd.Dir = root
	// worker/runner.test.mjs drives the Runner over the real test module.
	cmd.Env = append(os.Environ(), "DAMPER_TEST_MODULE="+build(t).module)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node --test:\n%s", out)
}
