package local

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/internal/wire"
)

// testLogger logs to the test's output, so a failing test shows what the
// module printed (a panic's stack, for one).
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Logf("%s", p)
	return len(p), nil
}

// testConfig is the default configuration with a fresh data directory and
// the test's logger. The compilation cache is the default one, so a test
// process compiles the module once, and usually not at all.
func testConfig(tb testing.TB) Config {
	return NewConfig().WithDataDir(tb.TempDir()).WithLogger(testLogger(tb))
}

func newHost(tb testing.TB, cfg Config) *Host {
	tb.Helper()
	wasm, err := os.ReadFile(testmodule.Path(tb))
	require.NoError(tb, err)
	h, err := New(context.Background(), wasm, cfg)
	require.NoError(tb, err)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(tb, h.Close(ctx))
	})
	return h
}

// run runs agent for id with payload (any JSON-encodable value) and decodes
// the result into a map.
func run(tb testing.TB, h *Host, agent, id string, payload any) map[string]any {
	tb.Helper()
	res, err := h.Run(context.Background(), agent, id, mustJSON(tb, payload))
	require.NoError(tb, err)
	require.Regexp(tb, `^r_[0-9a-f]+$`, res.Run)
	var out map[string]any
	require.NoError(tb, json.Unmarshal(res.Result, &out))
	return out
}

// runErr runs and returns the *wire.Error it must fail with.
func runErr(tb testing.TB, h *Host, agent, id string, payload any) *wire.Error {
	tb.Helper()
	_, err := h.Run(context.Background(), agent, id, mustJSON(tb, payload))
	require.Error(tb, err)
	var we *wire.Error
	require.ErrorAs(tb, err, &we)
	return we
}

func mustJSON(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	if raw, ok := v.(json.RawMessage); ok {
		return raw
	}
	b, err := json.Marshal(v)
	require.NoError(tb, err)
	return b
}

// abiHarness drives module instances by hand, below Host: the export calls
// and the effect performer, as the host's driver uses them.
type abiHarness struct {
	tb       testing.TB
	eng      *engine
	perf     *performer
	counters counters
	dataDir  string
	stores   map[string]*store
}

func newABIHarness(tb testing.TB, fetcher Fetcher) *abiHarness {
	tb.Helper()
	wasm, err := os.ReadFile(testmodule.Path(tb))
	require.NoError(tb, err)
	eng, err := newEngine(context.Background(), wasm, defaultCacheDir(), testLogger(tb))
	require.NoError(tb, err)
	if fetcher == nil {
		fetcher = NewFetcher(nil)
	}
	a := &abiHarness{tb: tb, eng: eng, perf: &performer{fetcher: fetcher}, dataDir: tb.TempDir(), stores: map[string]*store{}}
	tb.Cleanup(func() {
		for _, s := range a.stores {
			s.close()
		}
		eng.close(context.Background())
	})
	return a
}

func (a *abiHarness) instance() *moduleInstance {
	a.tb.Helper()
	mi, err := a.eng.instantiate(context.Background(), testLogger(a.tb))
	require.NoError(a.tb, err)
	a.tb.Cleanup(func() { mi.close(context.Background()) })
	return mi
}

// task returns the host side of a new task of (agent, id) in mi; tasks of
// one (agent, id) share its database, as under Host.
func (a *abiHarness) task(mi *moduleInstance, agent, id string) *task {
	key := agent + "/" + id
	return &task{
		id: mi.newTaskID(), agent: agent, instance: id, run: "r_" + id,
		logger: testLogger(a.tb), counters: &a.counters,
		store: func(ctx context.Context) (*store, error) {
			if s, ok := a.stores[key]; ok {
				return s, nil
			}
			s, err := openStore(ctx, filepath.Join(a.dataDir, agent, id+".sqlite"))
			if err == nil {
				a.stores[key] = s
			}
			return s, err
		},
	}
}

func (a *abiHarness) start(mi *moduleInstance, t *task, payload any) wire.Output {
	a.tb.Helper()
	out, err := mi.start(context.Background(), wire.Start{
		Task: t.id, Kind: wire.KindRun, Agent: t.agent, Instance: t.instance, Run: t.run,
		Payload: mustJSON(a.tb, payload),
	})
	require.NoError(a.tb, err)
	return out
}

// step performs the batch out holds and resumes the task with the results.
func (a *abiHarness) step(mi *moduleInstance, t *task, out wire.Output) wire.Output {
	a.tb.Helper()
	require.False(a.tb, out.Done)
	results := a.perf.performBatch(context.Background(), t, out.Effects)
	next, err := mi.resume(context.Background(), wire.Resume{Task: t.id, Results: results})
	require.NoError(a.tb, err)
	return next
}

// finish steps the task to its end and returns its result.
func (a *abiHarness) finish(mi *moduleInstance, t *task, out wire.Output) map[string]any {
	a.tb.Helper()
	for !out.Done {
		out = a.step(mi, t, out)
	}
	require.Nil(a.tb, out.Error, "task %s failed", t.id)
	var m map[string]any
	require.NoError(a.tb, json.Unmarshal(out.Result, &m))
	return m
}
