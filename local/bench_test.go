package local

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"

	"github.com/damperdev/damper/internal/shellbench"
	"github.com/damperdev/damper/internal/testmodule"
)

// memoryFetcher answers every fetch from memory: no network, so a benchmark
// measures the effect round trip alone.
var memoryFetcher = roundTripFunc(func(*http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"text/plain"}},
		Body:       io.NopCloser(strings.NewReader("ok")),
	}, nil
})

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// BenchmarkEffectRoundTrip is the cost of one fetch round trip: the guest's
// policy decides a buffered fetch, the export returns the batch (the fetch
// and its policy.allow event), the host decodes it, performs both (the
// fetch from memory), encodes the results and resumes. One op is one
// round trip.
func BenchmarkEffectRoundTrip(b *testing.B) {
	h := newHost(b, testConfig(b).WithLogger(nil).WithTransport(memoryFetcher).WithTargets(map[string]string{"fake": "http://memory"}))
	run(b, h, "probe.roundtrip", "bench", map[string]any{"n": 1, "url": "http://memory/"}) // instantiate
	b.ResetTimer()
	out := run(b, h, "probe.roundtrip", "bench", map[string]any{"n": b.N, "url": "http://memory/"})
	b.StopTimer()
	require.EqualValues(b, b.N, out["n"])
}

// BenchmarkInstantiate is the start of a module instance: instantiate and
// _initialize (every package's init). It reports the linear memory of an
// idle module instance.
func BenchmarkInstantiate(b *testing.B) {
	a := newABIHarness(b, nil)
	ctx := context.Background()
	var mem uint32
	for b.Loop() {
		mi, err := a.eng.instantiate(ctx, a.eng.logger)
		require.NoError(b, err)
		mem = mi.memorySize()
		mi.close(ctx)
	}
	b.ReportMetric(float64(mem)/(1<<20), "MiB-memory/instance")
}

// BenchmarkCompile compiles the module without a cache (cold) and from a
// warm file compilation cache in a new runtime (cached, as at a process's
// start). Run with -benchtime=1x: a cold compile takes seconds.
func BenchmarkCompile(b *testing.B) {
	wasm, err := os.ReadFile(testmodule.Path(b))
	require.NoError(b, err)
	ctx := context.Background()
	compile := func(b *testing.B, cache wazero.CompilationCache) {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
		defer rt.Close(ctx)
		_, err := rt.CompileModule(ctx, wasm)
		require.NoError(b, err)
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			cache := wazero.NewCompilationCache()
			compile(b, cache)
			cache.Close(ctx)
		}
	})
	b.Run("cached", func(b *testing.B) {
		dir := b.TempDir()
		warm, err := wazero.NewCompilationCacheWithDir(dir)
		require.NoError(b, err)
		compile(b, warm)
		warm.Close(ctx)
		for b.Loop() {
			cache, err := wazero.NewCompilationCacheWithDir(dir)
			require.NoError(b, err)
			compile(b, cache)
			cache.Close(ctx)
		}
	})
}

// TestReportIdleMemory logs an idle module instance's linear memory, the
// figure that sizes how many agent instances a host keeps live. It asserts
// nothing about it; `go test -v -run ReportIdleMemory` shows it.
func TestReportIdleMemory(t *testing.T) {
	a := newABIHarness(t, nil)
	mi := a.instance()
	t.Logf("idle module instance: %.1f MiB of linear memory", float64(mi.memorySize())/(1<<20))
	require.NotZero(t, mi.memorySize())
}

// BenchmarkEmptyShell is the shell example agent running the empty
// sandbox's benchmark workload (internal/shellbench: 20 commands over 1,000
// files) inside the module: one op is one run of the script, with the
// changed files written back to the instance's SQLite file. The files are
// written once, by a first run.
func BenchmarkEmptyShell(b *testing.B) {
	h := newHost(b, testConfig(b).WithLogger(nil))
	out := run(b, h, "shell", "bench", map[string]any{"files": shellbench.Files(), "script": "find . -type f | wc -l"})
	require.Equal(b, "1000\n", out["stdout"], "%v", out)
	b.ResetTimer()
	for b.Loop() {
		out = run(b, h, "shell", "bench", map[string]any{"script": shellbench.Script})
	}
	b.StopTimer()
	require.EqualValues(b, 0, out["exit_code"], "%v", out["stderr"])
	require.Contains(b, out["stdout"], "1000\n")
}
