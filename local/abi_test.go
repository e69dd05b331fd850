package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/host"
	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

// Tasks of different agent instances interleave in one module instance,
// each with its own database.
func TestInterleavedTasksInOneModuleInstance(t *testing.T) {
	a := newABIHarness(t, nil)
	mi := a.instance()

	setA := a.task(mi, "probe.state", "alice")
	setB := a.task(mi, "probe.state", "bob")
	outA := a.start(mi, setA, map[string]any{"op": "set", "key": "k", "value": "from alice"})
	require.False(t, outA.Done, "set waits on its sql effect")
	outB := a.start(mi, setB, map[string]any{"op": "set", "key": "k", "value": "from bob"})
	require.False(t, outB.Done)
	// Resume B before A: each effect is keyed by its task.
	outB = a.step(mi, setB, outB)
	outA = a.step(mi, setA, outA)
	a.finish(mi, setB, outB)
	a.finish(mi, setA, outA)

	getA := a.task(mi, "probe.state", "alice")
	getB := a.task(mi, "probe.state", "bob")
	outA = a.start(mi, getA, map[string]any{"op": "get", "key": "k"})
	outB = a.start(mi, getB, map[string]any{"op": "get", "key": "k"})
	assert.Equal(t, map[string]any{"found": true, "value": "from bob"}, a.finish(mi, getB, outB))
	assert.Equal(t, map[string]any{"found": true, "value": "from alice"}, a.finish(mi, getA, outA))
	assert.NotEqual(t, getA.ID, getB.ID, "task ids are unique within a module instance")
}

// A batch of fetches comes to the host as one batch and is performed
// concurrently: the server answers only once all five requests are in.
func TestBatchIsPerformedConcurrently(t *testing.T) {
	const n = 5
	var (
		mu      sync.Mutex
		arrived int
		all     = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			fmt.Fprintf(w, "ok %s", r.URL.Path)
		case <-time.After(30 * time.Second):
			// Not a timing assertion: without this a host that fetched one
			// by one would hang the test instead of failing it.
			http.Error(w, "the other requests never came", http.StatusGatewayTimeout)
		}
	}))
	defer srv.Close()

	var batches [][]wire.Effect
	cfg := testConfig(t).WithTargets(map[string]string{"fake": srv.URL})
	cfg.onBatch = func(_, _ string, effects []wire.Effect) {
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, effects)
	}
	h := newHost(t, cfg)
	urls := make([]string, n)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/%d", srv.URL, i)
	}
	out := run(t, h, "probe.batch", "x", map[string]any{"urls": urls})

	responses, ok := out["responses"].([]any)
	require.True(t, ok, "%v", out)
	require.Len(t, responses, n)
	for i, r := range responses {
		r := r.(map[string]any)
		assert.EqualValues(t, 200, r["status"], "response %d: %v", i, r)
		assert.Equal(t, fmt.Sprintf("ok /%d", i), r["body"])
	}
	var fetches []int // per batch with a fetch
	for _, b := range batches {
		k := 0
		for _, e := range b {
			if e.Type == wire.EffectFetch {
				k++
			}
		}
		if k > 0 {
			fetches = append(fetches, k)
		}
	}
	assert.Equal(t, []int{n}, fetches, "one batch holds every fetch")
}

// A streamed body arrives through several read effects, whole.
func TestStreamedFetch(t *testing.T) {
	body := make([]byte, 1<<20+123)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range body {
		body[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(body)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for chunk := range chunks(body, 100_000) {
			w.Write(chunk)
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()

	h := newHost(t, testConfig(t).WithTargets(map[string]string{"fake": srv.URL}))
	out := run(t, h, "probe.stream", "x", map[string]any{"url": srv.URL, "max": 64 << 10})
	assert.EqualValues(t, 200, out["status"])
	assert.EqualValues(t, len(body), out["bytes"])
	assert.Equal(t, hex.EncodeToString(sum[:]), out["sha256"])
	assert.GreaterOrEqual(t, out["reads"], float64(len(body)/(64<<10)), "several read effects, each at most max bytes")
	assert.Zero(t, h.core.Counters().Streams.Load(), "the handle is released")
}

func chunks(b []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			k := min(n, len(b))
			if !yield(b[:k]) {
				return
			}
			b = b[k:]
		}
	}
}

// A run that outlives its timeout is canceled in the guest: it ends with
// canceled, and the host holds nothing for it any more.
func TestCancel(t *testing.T) {
	h := newHost(t, testConfig(t).WithRunTimeout(2*time.Second))
	// A first run creates the database and applies the migrations, so the
	// timed run spends its time in its sleep, not in getting there.
	assert.Equal(t, "", run(t, h, "probe.slow", "x", map[string]any{"key": "k", "read": true})["stored"])
	werr := runErr(t, h, "probe.slow", "x", map[string]any{"key": "k", "ms": 3_600_000})
	assert.Equal(t, wire.ErrCanceled, werr.Type)
	assert.Equal(t, 504, werr.Status, "a run past its run timeout answers 504, as on the Worker")
	assert.Contains(t, werr.Message, "run timeout (2s)")
	assert.Zero(t, h.core.Counters().Effects.Load(), "no effect (timer) left running")
	assert.Zero(t, h.core.Counters().Streams.Load())
	// What the run committed before its sleep stays; it stored nothing after.
	assert.Equal(t, "before", run(t, h, "probe.slow", "x", map[string]any{"key": "k", "read": true})["stored"])

	// The caller's context cancels too, and the instance keeps working.
	ctx, cancel := context.WithCancel(context.Background())
	cfg := testConfig(t)
	cfg.onBatch = func(string, string, []wire.Effect) { cancel() }
	h2 := newHost(t, cfg)
	_, err := h2.Run(ctx, "probe.sleep", "x", mustJSON(t, map[string]any{"ms": 3_600_000}))
	var we *Error
	require.ErrorAs(t, err, &we)
	assert.Equal(t, wire.ErrCanceled, we.Type)
	assert.NotEqual(t, 504, we.Status, "the caller left: not a run timeout")

	out := run(t, h, "probe.sleep", "x", map[string]any{"ms": 1})
	assert.EqualValues(t, 1, out["slept_ms"])
}

// An export whose output passes maxOutput is a trap (the Worker holds the
// same cap, worker/module.js MAX_OUTPUT): the run answers module_trap and
// the next run gets a fresh module instance.
func TestOutputCap(t *testing.T) {
	h := newHost(t, testConfig(t))
	assert.Len(t, run(t, h, "probe.huge", "x", map[string]any{"mib": 1})["data"], 1<<20)
	before := h.moduleInstance("probe.huge", "x")
	werr := runErr(t, h, "probe.huge", "x", map[string]any{"mib": 65})
	assert.Equal(t, errModuleTrap, werr.Type)
	assert.Nil(t, h.moduleInstance("probe.huge", "x"), "the instance that returned too much is dropped")
	assert.Len(t, run(t, h, "probe.huge", "x", map[string]any{"mib": 1})["data"], 1<<20)
	assert.NotSame(t, before, h.moduleInstance("probe.huge", "x"))
}

// An effect type the host does not know is an error result, never a trap.
func TestUnknownEffect(t *testing.T) {
	h := newHost(t, testConfig(t))
	for range 2 {
		out := run(t, h, "probe.unknown", "x", nil)
		assert.Equal(t, wire.ErrUnknownEffect, out["error_type"])
	}
	assert.Equal(t, "Hello, world!", run(t, h, "hello", "x", map[string]any{"name": "world"})["greeting"])
}

// A module that speaks another ABI version is refused, naming both.
func TestABIMismatchRefused(t *testing.T) {
	wasm, err := os.ReadFile(testmodule.WithABI(t, "99"))
	require.NoError(t, err)
	_, err = New(context.Background(), wasm, testConfig(t))
	var abiErr *ABIError
	require.ErrorAs(t, err, &abiErr)
	assert.Equal(t, 99, abiErr.Module)
	assert.Equal(t, wire.Version, abiErr.Host)
	assert.Contains(t, err.Error(), "99")
	assert.Contains(t, err.Error(), fmt.Sprint(wire.Version))

	_, err = ReadManifest(context.Background(), wasm, testConfig(t))
	require.ErrorAs(t, err, &abiErr)
}

func TestNotADamperModule(t *testing.T) {
	empty := []byte("\x00asm\x01\x00\x00\x00")
	_, err := New(context.Background(), empty, testConfig(t))
	require.ErrorIs(t, err, ErrNotDamperModule)
	assert.Contains(t, err.Error(), "not a damper module")

	_, err = New(context.Background(), []byte("not wasm"), testConfig(t))
	require.Error(t, err)
}

// A trap fails only its own run: other agent instances keep their module
// instance and state, and the trapped one gets a fresh module instance with
// its committed state.
func TestTrapFailsAlone(t *testing.T) {
	for _, mode := range []string{"panic", "exit"} {
		t.Run(mode, func(t *testing.T) {
			cfg := testConfig(t)
			// What the victim committed before: probe.crash touches no
			// storage, so its database is seeded here.
			victimDB := filepath.Join(cfg.dataDir, "probe.crash", "victim.sqlite")
			seed, err := host.OpenStore(context.Background(), victimDB)
			require.NoError(t, err)
			_, werr := seed.Batch(context.Background(), wire.SQLArgs{Statements: []wire.Statement{
				{SQL: "CREATE TABLE kept(v TEXT)"}, {SQL: "INSERT INTO kept VALUES ('committed')"},
			}})
			require.Nil(t, werr)
			require.NoError(t, seed.Close())

			h := newHost(t, cfg)
			run(t, h, "probe.state", "bystander", map[string]any{"op": "set", "key": "k", "value": "kept"})
			bystander := h.moduleInstance("probe.state", "bystander")
			require.NotNil(t, bystander)

			herr := runErr(t, h, "probe.crash", "victim", map[string]any{"mode": mode})
			assert.Equal(t, errModuleTrap, herr.Type)
			assert.Equal(t, http.StatusInternalServerError, herr.Status)
			assert.Nil(t, h.moduleInstance("probe.crash", "victim"), "the trapped module instance is dropped")

			assert.Same(t, bystander, h.moduleInstance("probe.state", "bystander"), "other agent instances keep theirs")
			assert.Equal(t, map[string]any{"found": true, "value": "kept"},
				run(t, h, "probe.state", "bystander", map[string]any{"op": "get", "key": "k"}))

			// The victim runs again, on a fresh module instance: its handler
			// answers (an agent_error for an unknown mode) instead of a trap.
			herr = runErr(t, h, "probe.crash", "victim", map[string]any{"mode": "none"})
			assert.Equal(t, wire.ErrAgent, herr.Type)
			assert.Contains(t, herr.Message, "unknown mode")
			require.NotNil(t, h.moduleInstance("probe.crash", "victim"))

			st, err := host.OpenStore(context.Background(), victimDB)
			require.NoError(t, err)
			defer st.Close()
			v, werr := st.Batch(context.Background(), wire.SQLArgs{Statements: []wire.Statement{{SQL: "SELECT v FROM kept"}}})
			require.Nil(t, werr)
			assert.Equal(t, [][]any{{"committed"}}, v.Results[0].Rows)
		})
	}
}

// moduleInstance returns the live module instance of (agent, id), or nil.
func (h *Host) moduleInstance(agent, id string) *moduleInstance {
	h.mu.Lock()
	ai := h.instances[instanceKey{agent, id}]
	h.mu.Unlock()
	if ai == nil {
		return nil
	}
	// The worker is idle between runs (Run has returned), so reading mi
	// races with nothing.
	return ai.mi
}

func TestEmitReachesListener(t *testing.T) {
	h := newHost(t, testConfig(t))
	var events []Event
	res, err := h.Run(context.Background(), "probe.emit", "x", mustJSON(t, map[string]any{"events": 3}),
		OnEvent(func(e Event) { events = append(events, e) }))
	require.NoError(t, err)
	assert.JSONEq(t, `{"emitted":3}`, string(res.Result))
	var types []event.Type
	for i, e := range events {
		types = append(types, e.Type)
		assert.Equal(t, res.Run, e.Run)
		assert.Equal(t, "probe.emit", e.Agent)
		assert.Equal(t, "x", e.Instance)
		assert.EqualValues(t, i+1, e.Seq, "the instance's first run: its events are numbered from 1")
	}
	assert.Equal(t, []event.Type{event.TypeRunStart, event.TypeTextDelta, event.TypeTextDelta, event.TypeTextDelta, event.TypeLog, event.TypeRunFinish}, types)
	assert.JSONEq(t, `{"text":"2"}`, string(events[3].Data))
}

func TestRunsOfOneInstanceAreSerialized(t *testing.T) {
	h := newHost(t, testConfig(t))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := h.Run(context.Background(), "hello", "same", mustJSON(t, map[string]any{"name": fmt.Sprint(i)}))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Every run read and wrote the counter alone: no visit is lost.
	out := run(t, h, "hello", "same", map[string]any{"name": "last"})
	assert.EqualValues(t, n+1, out["visits"])
}

func TestRunValidatesBeforeAnythingHappens(t *testing.T) {
	h := newHost(t, testConfig(t))
	for _, tc := range []struct {
		agent, id, payload string
		want               string
		status             int
	}{
		{"hello", "../x", `{}`, errInvalidName, 400},
		{"hello", strings.Repeat("a", 129), `{}`, errInvalidName, 400},
		{"..", "x", `{}`, errInvalidName, 400},
		{"nope", "x", `{}`, errNotFound, 404},
		{"hello", "x", `{`, errInvalidJSON, 400},
		{"hello", "x", `{"name":1}`, wire.ErrInvalidPayload, 400},
	} {
		t.Run(tc.agent+"/"+tc.id+" "+tc.payload, func(t *testing.T) {
			_, err := h.Run(context.Background(), tc.agent, tc.id, []byte(tc.payload))
			var we *Error
			require.True(t, errors.As(err, &we), "%v", err)
			assert.Equal(t, tc.want, we.Type)
			assert.Equal(t, tc.status, we.Status)
		})
	}
	entries, err := os.ReadDir(h.cfg.dataDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "no database was created")
}

// Runs of one agent instance run in arrival order: the i-th run queued sees
// the i-1 visits before it.
func TestRunsRunInArrivalOrder(t *testing.T) {
	h := newHost(t, testConfig(t))
	ids := make([]string, 10)
	for i := range ids {
		r, err := h.Start(context.Background(), "hello", "fifo", mustJSON(t, map[string]any{"name": "x"}))
		require.NoError(t, err)
		assert.Equal(t, StatusQueued, r.Status)
		ids[i] = r.ID
	}
	for i, id := range ids {
		r, err := h.Wait(context.Background(), "hello", "fifo", id)
		require.NoError(t, err)
		assert.Equal(t, StatusDone, r.Status)
		assert.JSONEq(t, fmt.Sprintf(`{"greeting":"Hello, x!","visits":%d}`, i+1), string(r.Result))
	}
}

// An idle agent instance loses its module instance (and database handle);
// its next run starts a new one on the same state.
func TestIdleInstanceIsDropped(t *testing.T) {
	h := newHost(t, testConfig(t).WithIdleTimeout(time.Millisecond))
	assert.EqualValues(t, 1, run(t, h, "hello", "idle", map[string]any{"name": "x"})["visits"])
	require.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.instances) == 0
	}, time.Minute, time.Millisecond)
	assert.EqualValues(t, 2, run(t, h, "hello", "idle", map[string]any{"name": "x"})["visits"])
}
