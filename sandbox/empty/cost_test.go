//go:build !wasip1

package empty

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/damperdev/damper/internal/build"
	"github.com/damperdev/damper/internal/shellbench"
	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/sandbox"
)

// BenchmarkModuleCost is what the empty kind costs a module, from three
// modules of testdata/cost: base (the hello agent), surface (hello and an
// agent that imports package sandbox but links no kind), empty (hello and
// the shell example, which links the empty kind) and jq (empty with
// sandbox/empty/jq). Each reports its
// size, raw and gzip, and the time to instantiate it under wazero and run
// _initialize (every package's init), from a compiled module.
func BenchmarkModuleCost(b *testing.B) {
	root, err := testmodule.RepoRoot()
	require.NoError(b, err)
	ctx := context.Background()
	cacheDir := filepath.Join(os.TempDir(), "damper-cost-wazero-cache")
	for _, variant := range []string{"base", "surface", "empty", "jq"} {
		b.Run(variant, func(b *testing.B) {
			out := filepath.Join(b.TempDir(), variant+".wasm")
			require.NoError(b, build.Module(ctx, "./sandbox/empty/testdata/cost/"+variant, out, build.WithDir(root)))
			wasm, err := os.ReadFile(out)
			require.NoError(b, err)
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
			zw.Write(wasm)
			zw.Close()

			cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
			require.NoError(b, err)
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
			defer rt.Close(ctx)
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			compiled, err := rt.CompileModule(ctx, wasm)
			require.NoError(b, err)
			cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize")
			b.ResetTimer()
			for b.Loop() {
				m, err := rt.InstantiateModule(ctx, compiled, cfg)
				require.NoError(b, err)
				m.Close(ctx)
			}
			b.ReportMetric(float64(len(wasm)), "bytes")
			b.ReportMetric(float64(gz.Len()), "gzip-bytes")
		})
	}
}

// BenchmarkScript is the empty sandbox's shell running the benchmark
// workload (internal/shellbench: 20 commands over 1,000 files) natively,
// in memory; BenchmarkScriptBash is bash doing the same in a directory of
// the same files. (The same workload inside the module: local's
// BenchmarkEmptyShell.)
func BenchmarkScript(b *testing.B) {
	sb := newMemory(sandbox.Limits{})
	ctx := context.Background()
	for name, content := range shellbench.Files() {
		require.NoError(b, sb.WriteFile(ctx, name, []byte(content)))
	}
	var want string
	for b.Loop() {
		res, err := sb.Exec(ctx, sandbox.Cmd{Script: shellbench.Script})
		require.NoError(b, err)
		require.Equal(b, 0, res.ExitCode, "%s", res.Stderr)
		want = res.Stdout
	}
	require.Contains(b, want, "1000\n")
}

func BenchmarkScriptBash(b *testing.B) {
	dir := b.TempDir()
	for name, content := range shellbench.Files() {
		p := filepath.Join(dir, name)
		require.NoError(b, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(b, os.WriteFile(p, []byte(content), 0o644))
	}
	for b.Loop() {
		cmd := exec.Command("bash", "--noprofile", "--norc", "-c", shellbench.Script)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, "%s", out)
	}
}
