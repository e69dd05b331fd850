package local

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/host"
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

// runErr runs and returns the *Error it must fail with.
func runErr(tb testing.TB, h *Host, agent, id string, payload any) *Error {
	tb.Helper()
	_, err := h.Run(context.Background(), agent, id, mustJSON(tb, payload))
	require.Error(tb, err)
	var he *Error
	require.ErrorAs(tb, err, &he)
	return he
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
// and the host core's effect performer, as the host's driver uses them.
type abiHarness struct {
	tb        testing.TB
	eng       *engine
	core      *host.Core
	dataDir   string
	instances map[string]*host.Instance
}

func newABIHarness(tb testing.TB, transport http.RoundTripper) *abiHarness {
	tb.Helper()
	wasm, err := os.ReadFile(testmodule.Path(tb))
	require.NoError(tb, err)
	cfg := testConfig(tb).withDefaults()
	eng, err := newEngine(context.Background(), wasm, cfg)
	require.NoError(tb, err)
	m, err := eng.manifest(context.Background())
	require.NoError(tb, err)
	core, err := host.New(m, host.Options{Transport: transport, Logger: testLogger(tb)})
	require.NoError(tb, err)
	a := &abiHarness{tb: tb, eng: eng, core: core, dataDir: tb.TempDir(), instances: map[string]*host.Instance{}}
	tb.Cleanup(func() {
		for _, i := range a.instances {
			i.Close()
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
func (a *abiHarness) task(mi *moduleInstance, agent, id string) *host.Task {
	key := agent + "/" + id
	inst, ok := a.instances[key]
	if !ok {
		inst = a.core.NewInstance(agent, id, filepath.Join(a.dataDir, agent, id+".sqlite"))
		a.instances[key] = inst
	}
	t := a.core.NewTask(mi.newTaskID(), "r_"+id, inst, testLogger(a.tb))
	a.tb.Cleanup(t.Release)
	return t
}

func (a *abiHarness) start(mi *moduleInstance, t *host.Task, payload any) wire.Output {
	a.tb.Helper()
	out, err := mi.Start(context.Background(), t.Start(mustJSON(a.tb, payload)))
	require.NoError(a.tb, err)
	return out
}

// step performs the batch out holds and resumes the task with the results.
func (a *abiHarness) step(mi *moduleInstance, t *host.Task, out wire.Output) wire.Output {
	a.tb.Helper()
	require.False(a.tb, out.Done)
	results := a.core.PerformBatch(context.Background(), t, out.Effects)
	next, err := mi.Resume(context.Background(), &wire.Resume{Task: t.ID, Results: results})
	require.NoError(a.tb, err)
	return next
}

// finish steps the task to its end and returns its result.
func (a *abiHarness) finish(mi *moduleInstance, t *host.Task, out wire.Output) map[string]any {
	a.tb.Helper()
	for !out.Done {
		out = a.step(mi, t, out)
	}
	require.Nil(a.tb, out.Error, "task %s failed", t.ID)
	var m map[string]any
	require.NoError(a.tb, json.Unmarshal(out.Result, &m))
	return m
}
