//go:build !wasip1

package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/policy"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/runtime/internal/store"
)

type strictIn struct {
	Name  string            `json:"name"`
	Count int               `json:"count,omitempty"`
	Tags  []string          `json:"tags,omitempty"`
	Opts  *strictOpts       `json:"opts,omitempty"`
	Meta  map[string]string `json:"meta,omitempty"`
}

type strictOpts struct {
	Loud bool `json:"loud"`
}

type kvIn struct {
	Op    string `json:"op"`
	Key   string `json:"key"`
	Value any    `json:"value,omitempty"`
}

type kvOut struct {
	Found bool `json:"found"`
	Value any  `json:"value"`
}

type runRow struct {
	Run    string `json:"run"`
	Status string `json:"status"`
	Result string `json:"result"`
	Error  string `json:"error"`
}

// handlerCalls counts calls of test.strict: a refused payload never
// reaches the handler.
var handlerCalls int

func init() {
	agent.Register("test.strict", func(ctx *agent.Context, in strictIn) (strictIn, error) {
		handlerCalls++
		return in, nil
	})
	agent.Register("test.kv", func(ctx *agent.Context, in kvIn) (kvOut, error) {
		var out kvOut
		var err error
		switch in.Op {
		case "get":
			out.Found, err = ctx.State().Get(in.Key, &out.Value)
		case "set":
			err = ctx.State().Set(in.Key, in.Value)
		case "del":
			err = ctx.State().Delete(in.Key)
		}
		return out, err
	})
	// test.runs ends as its mode says, or lists the runs recorded before
	// it in its instance's runs table, which no API exposes.
	agent.Register("test.runs", func(ctx *agent.Context, in struct {
		Mode string `json:"mode"`
	}) (any, error) {
		switch in.Mode {
		case "error":
			return nil, errors.New("it went wrong")
		case "panic":
			panic(fmt.Sprintf("no %s", "way"))
		case "goroutine-panic":
			g := ctx.Group()
			g.Go(func() error { return ctx.Sleep(time.Millisecond) })
			g.Go(func() error { panic("in a goroutine") })
			_ = g.Wait()
			return "the panic wins", nil
		case "newer-schema": // a later module migrated this database
			_, err := store.Exec(ctx, wire.Statement{SQL: `INSERT INTO _damper_migrations (version, applied_at) VALUES (99, 0)`})
			return nil, err
		case "list":
			rs, err := store.Exec(ctx, wire.Statement{SQL: `SELECT run, status, COALESCE(result, ''), COALESCE(error, '') FROM _damper_runs WHERE run != ? ORDER BY created_at, rowid`, Args: []any{ctx.Run()}})
			if err != nil {
				return nil, err
			}
			var rows []runRow
			for _, r := range rs[0].Rows {
				rows = append(rows, runRow{Run: r[0].(string), Status: r[1].(string), Result: r[2].(string), Error: r[3].(string)})
			}
			return rows, nil
		}
		return in.Mode, nil
	})
	agent.Register("test.info", func(ctx *agent.Context, _ struct{}) (map[string]string, error) {
		return map[string]string{"agent": ctx.Agent(), "instance": ctx.Instance(), "run": ctx.Run()}, nil
	})
	// Test agents that fetch reach http://x and https://api.example (with an
	// X-Test header); test.fetch's redirect to elsewhere.example is not
	// allowed.
	fetchPolicy, err := policy.New(
		policy.NewService("x", "http://x").Level(policy.AllowAll),
		policy.NewService("api", "https://api.example").Level(policy.AllowAll).AddHeaders("X-Test"),
	)
	if err != nil {
		panic(err)
	}
	agent.Register("test.fanout", func(ctx *agent.Context, urls []string) ([]int, error) {
		statuses := make([]int, len(urls))
		g := ctx.Group()
		for i, u := range urls {
			g.Go(func() error {
				req, err := http.NewRequest(http.MethodGet, u, nil)
				if err != nil {
					return err
				}
				resp, err := ctx.Fetch(req)
				if err != nil {
					return err
				}
				statuses[i] = resp.StatusCode
				return nil
			})
		}
		return statuses, g.Wait()
	}, agent.WithPolicy(fetchPolicy))
	agent.Register("test.fetch", func(ctx *agent.Context, in struct {
		Method string `json:"method"`
		URL    string `json:"url"`
		Body   string `json:"body,omitempty"`
		Stream bool   `json:"stream,omitempty"`
		Read   int    `json:"read,omitempty"` // stream: bytes to read before closing; 0 reads all
	}) (map[string]any, error) {
		req, err := http.NewRequest(in.Method, in.URL, strings.NewReader(in.Body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Test", "yes")
		var resp *http.Response
		if in.Stream {
			resp, err = ctx.Transport().RoundTrip(req)
		} else {
			resp, err = ctx.Fetch(req)
		}
		if err != nil {
			return nil, err
		}
		var r io.Reader = resp.Body
		if in.Read > 0 {
			r = io.LimitReader(resp.Body, int64(in.Read))
		}
		body, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		if err := resp.Body.Close(); err != nil {
			return nil, err
		}
		return map[string]any{"status": resp.StatusCode, "location": resp.Header.Get("Location"), "body": string(body)}, nil
	}, agent.WithPolicy(fetchPolicy))
	agent.Register("test.wait", func(ctx *agent.Context, in struct {
		Ms int `json:"ms"`
	}) (string, error) {
		if err := ctx.Sleep(time.Duration(in.Ms) * time.Millisecond); err != nil {
			return "", err
		}
		return "slept", nil
	})
	agent.Register("test.events", func(ctx *agent.Context, _ struct{}) (struct{}, error) {
		if err := event.Emit(ctx, event.Event{Session: "s1", Turn: "t1", Data: event.TurnStart{Provider: "test", Model: "m"}}); err != nil {
			return struct{}{}, err
		}
		log := ctx.Logger().With("agent", ctx.Agent()).WithGroup("req")
		log.Warn("careful", "n", 3, slog.Duration("dur", 1500*time.Millisecond), "err", errors.New("bad"))
		return struct{}{}, nil
	})
}

// The whole module is one process natively: test agents share it.
func newHost(t *testing.T) *agenttest.Host {
	t.Helper()
	h := agenttest.New()
	t.Cleanup(func() { require.NoError(t, h.Close()) })
	return h
}

func runErr(t *testing.T, err error) *agenttest.Error {
	t.Helper()
	var e *agenttest.Error
	require.ErrorAs(t, err, &e)
	return e
}

func TestPayloadIsDecodedStrictly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload string
		want    string // the result, or
		message string // the invalid_payload message
	}{
		{name: "valid", payload: `{"name":"a","count":2,"opts":{"loud":true}}`, want: `{"name":"a","count":2,"opts":{"loud":true}}`},
		{name: "optional fields absent", payload: `{"name":"a"}`, want: `{"name":"a"}`},
		{name: "unknown field", payload: `{"name":"a","colour":"red"}`, message: `field "colour": unknown field`},
		{name: "field name in another case", payload: `{"Name":"a"}`, message: `field "Name": unknown field`},
		{name: "wrong type", payload: `{"name":"a","count":"2"}`, message: `field "count": want integer (int), got JSON string`},
		{name: "fraction for an integer", payload: `{"name":"a","count":2.5}`, message: `field "count": want integer (int), got JSON number 2.5`},
		{name: "missing required", payload: `{"count":1}`, message: `field "name": missing`},
		{name: "nested unknown", payload: `{"name":"a","opts":{"loud":true,"x":1}}`, message: `field "opts.x": unknown field`},
		{name: "nested missing", payload: `{"name":"a","opts":{}}`, message: `field "opts.loud": missing`},
		{name: "element type", payload: `{"name":"a","tags":["x",2]}`, message: `field "tags[1]": want string, got JSON number`},
		{name: "not an object", payload: `[1]`, message: `payload: want object, got JSON array`},
		{name: "no payload", payload: ``, message: `field "name": missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHost(t)
			var sawEffects bool
			h.OnBatch = func([]agenttest.Effect) { sawEffects = true }
			before := handlerCalls
			var payload any
			if tc.payload != "" {
				payload = json.RawMessage(tc.payload)
			}
			out, err := h.Run(t.Context(), "test.strict", "i", payload)
			if tc.message == "" {
				require.NoError(t, err)
				assert.JSONEq(t, tc.want, string(out))
				return
			}
			e := runErr(t, err)
			assert.Equal(t, agenttest.Error{Type: "invalid_payload", Status: 400, Message: tc.message}, *e)
			assert.Equal(t, before, handlerCalls, "the handler did not run")
			assert.False(t, sawEffects, "nothing was stored: not even the run")
		})
	}
}

func TestUnknownAgent(t *testing.T) {
	_, err := newHost(t).Run(t.Context(), "test.nobody", "i", nil)
	e := runErr(t, err)
	assert.Equal(t, "unknown_agent", e.Type)
	assert.Equal(t, 404, e.Status)
	assert.Contains(t, e.Message, `"test.nobody"`)
}

// listRuns returns the runs recorded in instance's database.
func listRuns(t *testing.T, h *agenttest.Host, instance string) []runRow {
	t.Helper()
	out, err := h.Run(t.Context(), "test.runs", instance, map[string]string{"mode": "list"})
	require.NoError(t, err)
	var rows []runRow
	require.NoError(t, json.Unmarshal(out, &rows))
	return rows
}

func TestHandlerFailures(t *testing.T) {
	h := newHost(t)
	modes := []struct{ mode, message string }{
		{"error", "it went wrong"},
		{"panic", "panic: no way"},
		{"goroutine-panic", "panic: in a goroutine"},
	}
	for _, tc := range modes {
		t.Run(tc.mode, func(t *testing.T) {
			_, err := h.Run(t.Context(), "test.runs", "failures", map[string]string{"mode": tc.mode})
			assert.Equal(t, agenttest.Error{Type: "agent_error", Status: 500, Message: tc.message}, *runErr(t, err))
		})
	}

	rows := listRuns(t, h, "failures")
	require.Len(t, rows, len(modes))
	for i, tc := range modes {
		assert.Equal(t, store.StatusFailed, rows[i].Status, "the failure is recorded as the run's end")
		assert.JSONEq(t, fmt.Sprintf(`{"type":"agent_error","message":%q,"status":500}`, tc.message), rows[i].Error)
	}
}

func TestRunsAreRecorded(t *testing.T) {
	h := newHost(t)
	_, err := h.Run(t.Context(), "test.runs", "runs", map[string]string{"mode": "ok"})
	require.NoError(t, err)
	_, err = h.Run(t.Context(), "test.runs", "runs", map[string]string{"nope": "x"})
	require.Error(t, err)

	rows := listRuns(t, h, "runs")
	require.Len(t, rows, 1, "a refused payload stores no run")
	assert.Equal(t, store.StatusSucceeded, rows[0].Status)
	assert.JSONEq(t, `"ok"`, rows[0].Result)
}

func TestNewerSchemaIsRefused(t *testing.T) {
	h := newHost(t)
	_, err := h.Run(t.Context(), "test.runs", "newer", map[string]string{"mode": "newer-schema"})
	require.NoError(t, err)
	agenttest.Restart()
	_, err = h.Run(t.Context(), "test.runs", "newer", map[string]string{"mode": "ok"})
	e := runErr(t, err)
	assert.Equal(t, "internal", e.Type)
	assert.Contains(t, e.Message, fmt.Sprintf("schema version 99, newer than this module's %d", store.Version()))
}

func TestContextNamesTheRun(t *testing.T) {
	out, err := newHost(t).Run(t.Context(), "test.info", "inst-1", nil)
	require.NoError(t, err)
	var info map[string]string
	require.NoError(t, json.Unmarshal(out, &info))
	assert.Equal(t, "test.info", info["agent"])
	assert.Equal(t, "inst-1", info["instance"])
	assert.True(t, strings.HasPrefix(info["run"], "r_"), info["run"])
}

func TestState(t *testing.T) {
	h := newHost(t)
	kv := func(instance, op, key string, value any) kvOut {
		t.Helper()
		out, err := h.Run(t.Context(), "test.kv", instance, kvIn{Op: op, Key: key, Value: value})
		require.NoError(t, err)
		var o kvOut
		require.NoError(t, json.Unmarshal(out, &o))
		return o
	}
	assert.Equal(t, kvOut{}, kv("alice", "get", "k", nil))
	kv("alice", "set", "k", map[string]any{"a": []any{1.0, "two"}})
	assert.Equal(t, kvOut{Found: true, Value: map[string]any{"a": []any{1.0, "two"}}}, kv("alice", "get", "k", nil))
	assert.Equal(t, kvOut{}, kv("bob", "get", "k", nil), "each instance has its own state")

	agenttest.Restart()
	assert.True(t, kv("alice", "get", "k", nil).Found, "state outlives the module instance")

	kv("alice", "set", "k", "replaced")
	assert.Equal(t, kvOut{Found: true, Value: "replaced"}, kv("alice", "get", "k", nil))
	kv("alice", "del", "k", nil)
	assert.Equal(t, kvOut{}, kv("alice", "get", "k", nil))
	kv("alice", "del", "k", nil) // deleting a missing key is fine
}

func TestMigrationsRunOncePerModuleInstance(t *testing.T) {
	h := newHost(t)
	var checks, applies int
	h.OnBatch = func(batch []agenttest.Effect) {
		for _, e := range batch {
			var args wire.SQLArgs
			if e.Type != wire.EffectSQL || json.Unmarshal(e.Args, &args) != nil {
				continue
			}
			for _, st := range args.Statements {
				if strings.HasPrefix(st.SQL, "CREATE TABLE IF NOT EXISTS _damper_migrations") {
					checks++
				}
				if strings.HasPrefix(st.SQL, "INSERT INTO _damper_migrations") {
					applies++
				}
			}
		}
	}
	run := func(instance string) {
		t.Helper()
		_, err := h.Run(t.Context(), "test.kv", instance, kvIn{Op: "get", Key: "k"})
		require.NoError(t, err)
	}

	// Each migration applied records its version.
	n := store.Version()
	run("m1")
	assert.Equal(t, [2]int{1, n}, [2]int{checks, applies}, "a new database: checked and migrated")
	run("m1")
	assert.Equal(t, [2]int{1, n}, [2]int{checks, applies}, "known current: not checked again")
	run("m2")
	assert.Equal(t, [2]int{2, 2 * n}, [2]int{checks, applies}, "another instance, another database")

	agenttest.Restart()
	run("m1")
	assert.Equal(t, [2]int{3, 2 * n}, [2]int{checks, applies}, "a new module instance checks, and finds it current")
	run("m1")
	assert.Equal(t, [2]int{3, 2 * n}, [2]int{checks, applies})
}

func TestGroupEffectsAreOneBatch(t *testing.T) {
	h := newHost(t)
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200 + len(r.URL.Path))
	})
	var fetchBatches []map[string]int // effects by type, of the batches with a fetch
	h.OnBatch = func(batch []agenttest.Effect) {
		types := map[string]int{}
		for _, e := range batch {
			types[e.Type]++
		}
		if types[wire.EffectFetch] > 0 {
			fetchBatches = append(fetchBatches, types)
		}
	}
	out, err := h.Run(t.Context(), "test.fanout", "g", []string{"http://x/a", "http://x/bb", "http://x/ccc", "http://x/dddd"})
	require.NoError(t, err)
	assert.JSONEq(t, `[202,203,204,205]`, string(out))
	require.Len(t, fetchBatches, 1)
	// Each fetch's policy.allow event travels with it: no extra round trip.
	assert.Equal(t, map[string]int{wire.EffectFetch: 4, wire.EffectEmit: 4}, fetchBatches[0])
}

func TestFetch(t *testing.T) {
	h := newHost(t)
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s x-test=%s body=%s", r.Method, r.Host, r.URL.RequestURI(), r.Header.Get("X-Test"), body)
	})
	run := func(payload string) map[string]any {
		t.Helper()
		out, err := h.Run(t.Context(), "test.fetch", "f", json.RawMessage(payload))
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(out, &m))
		return m
	}

	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			got := run(fmt.Sprintf(`{"method":"POST","url":"https://api.example/v1/x?q=1","body":"hi","stream":%t}`, stream))
			assert.Equal(t, map[string]any{"status": 200.0, "location": "", "body": "POST api.example /v1/x?q=1 x-test=yes body=hi"}, got)
		})
	}

	// Transport returns a redirect as it is; Fetch follows it, deciding the
	// hop, which this policy denies.
	got := run(`{"method":"GET","url":"https://api.example/redirect","stream":true}`)
	assert.Equal(t, 302.0, got["status"], "a redirect is returned, not followed")
	assert.Equal(t, "https://elsewhere.example/", got["location"])
	_, err := h.Run(t.Context(), "test.fetch", "f", json.RawMessage(`{"method":"GET","url":"https://api.example/redirect"}`))
	assert.Contains(t, runErr(t, err).Message, "policy: denied GET https://elsewhere.example/: no-service")

	_, err = h.Run(t.Context(), "test.fetch", "f", json.RawMessage(`{"method":"GET","url":"file:///etc/passwd"}`))
	assert.Contains(t, runErr(t, err).Message, "not an absolute http or https URL")
}

func TestStreamedBodyIsReadInChunksAndClosed(t *testing.T) {
	h := newHost(t)
	big := strings.Repeat("0123456789", 1000)
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	var reads, closes int
	h.OnBatch = func(batch []agenttest.Effect) {
		for _, e := range batch {
			switch e.Type {
			case wire.EffectRead:
				reads++
			case wire.EffectClose:
				closes++
			}
		}
	}

	out, err := h.Run(t.Context(), "test.fetch", "s", map[string]any{"method": "GET", "url": "http://x/", "stream": true})
	require.NoError(t, err)
	var got struct{ Body string }
	require.NoError(t, json.Unmarshal(out, &got))
	assert.Equal(t, big, got.Body)
	assert.Greater(t, reads, 1, "the body came in several reads")
	assert.Zero(t, closes, "a body read to its end is released by the host")

	reads = 0
	out, err = h.Run(t.Context(), "test.fetch", "s", map[string]any{"method": "GET", "url": "http://x/", "stream": true, "read": 10})
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(out, &got))
	assert.Equal(t, big[:10], got.Body)
	assert.Equal(t, 1, closes, "a body closed early is closed on the host")
}

func TestSleepEmitLog(t *testing.T) {
	h := newHost(t)
	out, err := h.Run(t.Context(), "test.wait", "w", map[string]int{"ms": 1500})
	require.NoError(t, err)
	assert.JSONEq(t, `"slept"`, string(out))
	assert.Equal(t, 1500*time.Millisecond, h.Slept())

	_, err = h.Run(t.Context(), "test.events", "w", nil)
	require.NoError(t, err)
	events := h.Events()
	require.Len(t, events, 2, "the emitted event, then the log record")
	assert.Equal(t, event.TypeTurnStart, events[0].Type)
	assert.True(t, strings.HasPrefix(events[0].Run, "r_"))
	assert.Equal(t, "test.events", events[0].Agent)
	assert.Equal(t, "w", events[0].Instance)
	assert.Equal(t, "s1", events[0].Session)
	assert.Equal(t, "t1", events[0].Turn)
	assert.JSONEq(t, `{"provider":"test","model":"m"}`, string(events[0].Data))
	assert.Equal(t, event.TypeLog, events[1].Type)
	assert.Equal(t, events[0].Seq+1, events[1].Seq)
	p, err := events[1].Payload()
	require.NoError(t, err)
	l := p.(event.Log)
	assert.Equal(t, "warn", l.Level)
	assert.Equal(t, "careful", l.Message)
	assert.JSONEq(t, `{"agent":"test.events","req":{"n":3,"dur":"1.5s","err":"bad"}}`, string(l.Attrs))

	logs := h.Logs()
	require.Len(t, logs, 1)
	assert.Equal(t, "warn", logs[0].Level)
	assert.Equal(t, "careful", logs[0].Message)
	assert.Equal(t, map[string]any{
		"agent": "test.events",
		"req":   map[string]any{"n": 3.0, "dur": "1.5s", "err": "bad"},
	}, logs[0].Attrs)
}

func TestCancel(t *testing.T) {
	h := newHost(t)
	ctx, cancel := context.WithCancel(t.Context())
	h.OnBatch = func(batch []agenttest.Effect) {
		if batch[0].Type == wire.EffectSleep {
			cancel() // the host cancels while the run sleeps
		}
	}
	_, err := h.Run(ctx, "test.wait", "c", map[string]int{"ms": 10})
	assert.Equal(t, "canceled", runErr(t, err).Type)
}

func TestManifest(t *testing.T) {
	var m wire.Manifest
	require.NoError(t, json.Unmarshal(agenttest.Manifest(), &m))
	assert.Equal(t, wire.Version, m.ABI)
	var entry *wire.AgentEntry
	for i, a := range m.Agents {
		if i > 0 {
			assert.Less(t, m.Agents[i-1].Name, a.Name, "sorted by name")
		}
		if a.Name == "test.strict" {
			entry = &m.Agents[i]
		}
	}
	require.NotNil(t, entry)
	var in struct {
		Type       string         `json:"type"`
		Required   []string       `json:"required"`
		Properties map[string]any `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(entry.Input, &in))
	assert.Equal(t, "object", in.Type)
	assert.Equal(t, []string{"name"}, in.Required)
	assert.Len(t, in.Properties, 5)
	assert.NotEmpty(t, entry.Output)
}

func TestRegisterRefusesMistakes(t *testing.T) {
	noop := func(*agent.Context, struct{}) (struct{}, error) { return struct{}{}, nil }
	for _, name := range []string{"", ".", "..", "a/b", "a b", "é", strings.Repeat("a", 129)} {
		assert.Panics(t, func() { agent.Register(name, noop) }, "name %q", name)
	}
	assert.PanicsWithValue(t, `agent "test.strict" is registered twice`, func() { agent.Register("test.strict", noop) })
	assert.Panics(t, func() { agent.Register[struct{}, struct{}]("test.nil", nil) })
}

func init() {
	agent.Register("test.typed-error", func(ctx *agent.Context, in struct {
		Status int `json:"status"`
	}) (any, error) {
		return nil, fmt.Errorf("wrapped: %w", &agent.Error{Type: "out_of_stock", Status: in.Status, Message: "none left", Details: map[string]int{"left": 0}})
	})
}

func TestTypedErrors(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	for _, tc := range []struct{ status, want int }{{409, 409}, {0, 500}, {200, 500}, {600, 500}} {
		_, err := h.Run(t.Context(), "test.typed-error", "x", map[string]int{"status": tc.status})
		var ae *agenttest.Error
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, agenttest.Error{Type: "out_of_stock", Message: "none left", Status: tc.want, Details: json.RawMessage(`{"left":0}`)}, *ae)
	}
}
