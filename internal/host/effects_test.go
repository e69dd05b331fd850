package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

// testLogger logs to the test's output.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Logf("%s", p)
	return len(p), nil
}

// performerTask returns a core for an agent "a" without a policy and a task
// of it, whose instance keeps its database in the test's directory.
func performerTask(t *testing.T) (*Core, *Task) {
	// Any address: these tests fetch from loopback servers no policy names
	// (TestDefaultTransportDialsOnlyTargetsAndPublicAddresses is the rule).
	plain := http.DefaultTransport.(*http.Transport).Clone()
	c, err := New(wire.Manifest{ABI: wire.Version, Agents: []wire.AgentEntry{{Name: "a"}}}, Options{Logger: testLogger(t), Transport: plain})
	require.NoError(t, err)
	inst := c.NewInstance("a", "i", filepath.Join(t.TempDir(), "a", "i.sqlite"))
	tk := c.NewTask("t1", "r_1", inst, testLogger(t))
	t.Cleanup(func() {
		tk.Release()
		inst.Close()
		assert.Zero(t, c.Counters().Streams.Load(), "every handle released")
		assert.Zero(t, inst.InFlight(), "every body given back")
	})
	return c, tk
}

func perform(t *testing.T, c *Core, tk *Task, typ string, args any) (json.RawMessage, *wire.Error) {
	t.Helper()
	raw, err := json.Marshal(args)
	require.NoError(t, err)
	r := c.Perform(context.Background(), tk, wire.Effect{ID: 7, Type: typ, Args: raw})
	require.EqualValues(t, 7, r.ID)
	tk.releaseBodies() // as resuming the guest with the result does
	return r.Value, r.Error
}

func TestFetchNeverFollowsRedirects(t *testing.T) {
	var hits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits = append(hits, r.URL.Path)
		if r.URL.Path == "/from" {
			w.Header().Set("Location", "/to")
			w.Header().Add("X-Multi", "one")
			w.Header().Add("X-Multi", "two")
			w.WriteHeader(http.StatusFound)
			return
		}
		io.WriteString(w, "landed")
	}))
	defer srv.Close()
	p, tk := performerTask(t)
	raw, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{Method: "GET", URL: srv.URL + "/from"})
	require.Nil(t, werr)
	var v wire.FetchValue
	require.NoError(t, json.Unmarshal(raw, &v))
	assert.Equal(t, http.StatusFound, v.Status)
	assert.Equal(t, []string{"/from"}, hits)
	assert.Contains(t, v.Headers, wire.Header{"location", "/to"})
	// Lower-case names, sorted, repeated values in order: as workerd lists them.
	assert.Contains(t, v.Headers, wire.Header{"x-multi", "one"})
	i := indexOf(v.Headers, wire.Header{"x-multi", "one"})
	assert.Equal(t, wire.Header{"x-multi", "two"}, v.Headers[i+1])
}

func indexOf(hs []wire.Header, h wire.Header) int {
	for i, x := range hs {
		if x == h {
			return i
		}
	}
	return -1
}

func TestFetchSendsMethodHeadersBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Token", r.Header.Get("X-Token"))
		w.Write(bytes.ToUpper(body))
	}))
	defer srv.Close()
	p, tk := performerTask(t)
	raw, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{
		Method: "PUT", URL: srv.URL + "/", Headers: []wire.Header{{"X-Token", "abc"}}, Body: []byte("hello"),
	})
	require.Nil(t, werr)
	var v wire.FetchValue
	require.NoError(t, json.Unmarshal(raw, &v))
	assert.Equal(t, "HELLO", string(v.Body))
	assert.Contains(t, v.Headers, wire.Header{"x-method", "PUT"})
	assert.Contains(t, v.Headers, wire.Header{"x-token", "abc"})
}

func TestFetchBodyCap(t *testing.T) {
	big := bytes.Repeat([]byte("x"), wire.MaxWholeBody+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(big[:wire.MaxWholeBody+len(r.URL.Query().Get("extra"))])
	}))
	defer srv.Close()
	p, tk := performerTask(t)
	raw, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{URL: srv.URL + "/"})
	require.Nil(t, werr, "exactly 32 MiB is allowed")
	var v wire.FetchValue
	require.NoError(t, json.Unmarshal(raw, &v))
	assert.Len(t, v.Body, wire.MaxWholeBody)

	_, werr = perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{URL: srv.URL + "/?extra=1"})
	require.NotNil(t, werr)
	assert.Equal(t, wire.ErrFetch, werr.Type)
	assert.Contains(t, werr.Message, "stream")
}

func TestFetchStreamReadClose(t *testing.T) {
	body := strings.Repeat("0123456789", 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer srv.Close()
	p, tk := performerTask(t)

	open := func() uint64 {
		raw, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{URL: srv.URL + "/", Stream: true})
		require.Nil(t, werr)
		var v wire.FetchValue
		require.NoError(t, json.Unmarshal(raw, &v))
		assert.Empty(t, v.Body)
		require.NotZero(t, v.Handle)
		return v.Handle
	}
	h := open()
	var got []byte
	for {
		raw, werr := perform(t, p, tk, wire.EffectRead, wire.ReadArgs{Handle: h, Max: 3000})
		require.Nil(t, werr)
		var v wire.ReadValue
		require.NoError(t, json.Unmarshal(raw, &v))
		require.LessOrEqual(t, len(v.Body), 3000)
		got = append(got, v.Body...)
		if v.EOF {
			break
		}
		require.NotEmpty(t, v.Body, "a read returns at least one byte unless eof")
	}
	assert.Equal(t, body, string(got))
	assert.Zero(t, p.Counters().Streams.Load(), "released at EOF")
	_, werr := perform(t, p, tk, wire.EffectRead, wire.ReadArgs{Handle: h, Max: 10})
	require.NotNil(t, werr)
	assert.Equal(t, wire.ErrBadEffect, werr.Type)

	h = open()
	_, werr = perform(t, p, tk, wire.EffectClose, wire.CloseArgs{Handle: h})
	require.Nil(t, werr)
	assert.Zero(t, p.Counters().Streams.Load(), "released by close")

	open()
	open()
	assert.EqualValues(t, 2, p.Counters().Streams.Load())
	tk.Release()
	assert.Zero(t, p.Counters().Streams.Load(), "released at task end")
}

func TestEffectErrorsNeverTrap(t *testing.T) {
	p, tk := performerTask(t)
	for _, tc := range []struct {
		typ, args string
		want      string
	}{
		{"container", `{}`, wire.ErrUnknownEffect},
		{"", `{}`, wire.ErrUnknownEffect},
		{wire.EffectFetch, `{"url": 5}`, wire.ErrBadEffect},
		{wire.EffectFetch, `{"url": "file:///etc/passwd"}`, wire.ErrFetch}, // not canonical, as on Workers
		{wire.EffectFetch, `{"url": "http://127.0.0.1:1/", "method": "BAD METHOD"}`, wire.ErrBadEffect},
		{wire.EffectSleep, `{"ms": -1}`, wire.ErrBadEffect},
		{wire.EffectSleep, `"soon"`, wire.ErrBadEffect},
		{wire.EffectSQL, `{"statements": []}`, wire.ErrBadEffect},
		{wire.EffectSQL, `[]`, wire.ErrBadEffect},
		{wire.EffectRead, `{"handle": 99}`, wire.ErrBadEffect},
		{wire.EffectLog, ``, wire.ErrBadEffect},
	} {
		t.Run(tc.typ+" "+tc.args, func(t *testing.T) {
			r := p.Perform(context.Background(), tk, wire.Effect{ID: 1, Type: tc.typ, Args: json.RawMessage(tc.args)})
			require.NotNil(t, r.Error)
			assert.Equal(t, tc.want, r.Error.Type)
			assert.Nil(t, r.Value)
		})
	}
}

func TestEmitAndSleep(t *testing.T) {
	p, tk := performerTask(t)
	var got []wire.Event
	tk.OnEvent = func(e wire.Event) { got = append(got, e) }
	_, werr := perform(t, p, tk, wire.EffectEmit, wire.EmitArgs{Events: []wire.Event{
		{Type: "a", Run: "r_1", Data: json.RawMessage(`{"n":1}`)},
		{Type: "b", Run: "r_1"},
	}})
	require.Nil(t, werr)
	require.Len(t, got, 2)
	assert.Equal(t, "a", got[0].Type)
	assert.JSONEq(t, `{"n":1}`, string(got[0].Data))
	assert.Equal(t, "b", got[1].Type)

	raw, werr := perform(t, p, tk, wire.EffectSleep, wire.SleepArgs{Ms: 1})
	require.Nil(t, werr)
	assert.JSONEq(t, `{}`, string(raw))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := p.Perform(ctx, tk, wire.Effect{ID: 1, Type: wire.EffectSleep, Args: json.RawMessage(`{"ms":3600000}`)})
	require.NotNil(t, r.Error)
	assert.Equal(t, wire.ErrCanceled, r.Error.Type)
}

// Streamed chunks count against the instance's body budget until the guest
// has them, and a read gets no more than is left (but DefaultRead always).
func TestReadsCountAgainstTheBodyBudget(t *testing.T) {
	big := bytes.Repeat([]byte("y"), wire.MaxBodiesInFlight+1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(big) }))
	defer srv.Close()
	p, tk := performerTask(t)
	raw, werr := perform(t, p, tk, wire.EffectFetch, wire.FetchArgs{URL: srv.URL + "/", Stream: true})
	require.Nil(t, werr)
	var v wire.FetchValue
	require.NoError(t, json.Unmarshal(raw, &v))

	read := func() int {
		r := p.Perform(context.Background(), tk, wire.Effect{ID: 1, Type: wire.EffectRead, Args: json.RawMessage(fmt.Sprintf(`{"handle":%d,"max":%d}`, v.Handle, wire.MaxRead))})
		require.Nil(t, r.Error)
		var rv wire.ReadValue
		require.NoError(t, json.Unmarshal(r.Value, &rv))
		return len(rv.Body)
	}
	// Without a resume in between, the budget fills up and reads shrink to
	// DefaultRead.
	var got int
	for got < wire.MaxBodiesInFlight {
		n := read()
		require.LessOrEqual(t, n, wire.MaxRead)
		got += n
	}
	assert.LessOrEqual(t, read(), wire.DefaultRead, "once the budget is used, a read gets DefaultRead at most")
	assert.GreaterOrEqual(t, tk.Inst.InFlight(), int64(wire.MaxBodiesInFlight))
	tk.releaseBodies() // the guest has the batch
	assert.Zero(t, tk.Inst.InFlight())
}
