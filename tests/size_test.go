package tests

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	damperbuild "github.com/damperdev/damper/internal/build"
	"github.com/damperdev/damper/internal/testmodule"
)

// moduleBudget is our own ceiling for the shipped module, gzip -9 (the
// Workers limit is 10 MB): start-up time grows with size.
const moduleBudget = 3_000_000

// TestShippedModuleSize builds ./examples/module as damper build does and
// holds it under moduleBudget. It measures with gzip -9, as
// docs/architecture.md does; compress/gzip at BestCompression gives ~1% more
// and so is not the figure the budget is written in.
func TestShippedModuleSize(t *testing.T) {
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	wasm := filepath.Join(t.TempDir(), "damper.wasm")
	require.NoError(t, damperbuild.Module(context.Background(), "./examples/module", wasm, damperbuild.WithDir(root)))

	gz, err := exec.Command("gzip", "-9", "-c", wasm).Output()
	require.NoError(t, err, "gzip -9 measures the module; install gzip")
	t.Logf("examples/module: %d bytes gzip -9", len(gz))
	require.Less(t, len(gz), moduleBudget,
		"examples/module is %d bytes gzip -9, not under the budget of %d: find what is linked that need not be "+
			"(docs/architecture.md, \"Module size\", says how to look)", len(gz), moduleBudget)
}
