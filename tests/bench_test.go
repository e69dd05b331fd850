package tests

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
)

// TestWorkerBenchRuns keeps `make bench` honest: the Workers-host benchmark
// drives the Worker's own Runner over the test module, so a change to
// either that breaks it fails here, with a few round trips instead of the
// benchmark's thousands.
func TestWorkerBenchRuns(t *testing.T) {
	a := build(t)
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	out, err := exec.Command("node", filepath.Join(root, "build", "bench-worker.mjs"), a.module, "2", "50").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, line := range []string{"worker: instantiate+init median", "worker: idle instance memory", "worker: effect round trip"} {
		assert.Contains(t, string(out), line)
	}
}
