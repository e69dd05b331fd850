//go:build !wasip1

package empty

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/shellbench"
	"github.com/damperdev/damper/sandbox"
)

// TestBenchWorkloadMatchesBash holds the benchmark's workload (20 commands
// over 1,000 files) to bash's output, so the benchmarks compare the same
// work.
func TestBenchWorkloadMatchesBash(t *testing.T) {
	sb := newMemory(sandbox.Limits{})
	ctx := context.Background()
	dir := t.TempDir()
	for name, content := range shellbench.Files() {
		require.NoError(t, sb.WriteFile(ctx, name, []byte(content)))
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	res, err := sb.Exec(ctx, sandbox.Cmd{Script: shellbench.Script})
	require.NoError(t, err)
	cmd := exec.Command("bash", "--noprofile", "--norc", "-c", shellbench.Script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.Output()
	require.NoError(t, err)
	assert.Equal(t, string(out), res.Stdout, res.Stderr)
}
