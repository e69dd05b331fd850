package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/tests/agents"
)

// sseEvent is one event of an SSE stream: its id and event fields, and
// the envelope its data line holds.
type sseEvent struct {
	id  int64
	typ string
	env event.Envelope
}

// sseStream is an open SSE response.
type sseStream struct {
	resp     *http.Response
	r        *bufio.Reader
	comments int // comment lines (heartbeats) seen
}

// stream sends a request that answers with SSE and checks it does.
func (c *client) stream(t *testing.T, method, path string, body io.Reader, hdr map[string]string) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxFor(t), method, c.h.URL()+path, body)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	require.Contains(t, resp.Header.Get("Content-Type"), "text/event-stream")
	s := &sseStream{resp: resp, r: bufio.NewReader(resp.Body)}
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.resp.Body.Close() }

// next returns the next event, or false at the end of the stream.
func (s *sseStream) next(t *testing.T) (sseEvent, bool) {
	t.Helper()
	var (
		e       sseEvent
		data    []byte
		hasData bool
	)
	for {
		line, err := s.r.ReadString('\n')
		if err == io.EOF && line == "" {
			return e, false
		}
		require.NoError(t, err)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if !hasData {
				continue // the end of a comment
			}
			require.NoError(t, json.Unmarshal(data, &e.env), "data: %s", data)
			return e, true
		case strings.HasPrefix(line, ":"):
			s.comments++
		case strings.HasPrefix(line, "id: "):
			id, err := strconv.ParseInt(line[4:], 10, 64)
			require.NoError(t, err)
			e.id = id
		case strings.HasPrefix(line, "event: "):
			e.typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			require.False(t, hasData, "one data line per event")
			data, hasData = []byte(line[6:]), true
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
}

// all reads events to the end of the stream.
func (s *sseStream) all(t *testing.T) []sseEvent {
	t.Helper()
	var out []sseEvent
	for {
		e, ok := s.next(t)
		if !ok {
			return out
		}
		out = append(out, e)
	}
}

func types(evs []sseEvent) []event.Type {
	out := make([]event.Type, len(evs))
	for i, e := range evs {
		out[i] = e.env.Type
	}
	return out
}

// checkWellFormed checks what every stream of one run holds: id is seq,
// event is type, one agent instance and run, and contiguous sequence
// numbers (runs of an agent instance take turns).
func checkWellFormed(t *testing.T, evs []sseEvent, agent, id, run string) {
	t.Helper()
	require.NotEmpty(t, evs)
	for i, e := range evs {
		assert.Equal(t, e.id, e.env.Seq)
		assert.Equal(t, e.typ, string(e.env.Type))
		assert.True(t, event.Known(e.env.Type), "%s", e.typ)
		assert.Equal(t, agent, e.env.Agent)
		assert.Equal(t, id, e.env.Instance)
		assert.Equal(t, run, e.env.Run)
		assert.False(t, e.env.Time.IsZero())
		if i > 0 {
			assert.Equal(t, evs[i-1].env.Seq+1, e.env.Seq, "contiguous seq at %d", i)
		}
	}
}

type runView struct {
	Run      string          `json:"run"`
	Agent    string          `json:"agent"`
	Instance string          `json:"instance"`
	Status   string          `json:"status"`
	Mode     string          `json:"mode"`
	Created  time.Time       `json:"created"`
	Started  time.Time       `json:"started"`
	Finished time.Time       `json:"finished"`
	Attempts int             `json:"attempts"`
	Result   json.RawMessage `json:"result"`
	Error    *struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	Usage event.Usage `json:"usage"`
	Cost  float64     `json:"cost"`
}

func (c *client) getRun(t *testing.T, agent, id, run string) runView {
	t.Helper()
	r := c.do(t, http.MethodGet, "/agents/"+agent+"/"+id+"/runs/"+run, nil, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var v runView
	require.NoError(t, json.Unmarshal(r.body, &v), "%s", r.body)
	return v
}

// background starts a run in the background and returns its id.
func (c *client) background(t *testing.T, agent, id, payload string) string {
	t.Helper()
	r := c.do(t, http.MethodPost, "/agents/"+agent+"/"+id+"?background=1", strings.NewReader(payload), nil)
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	v := r.json(t)
	run := v["run"].(string)
	assert.Equal(t, "queued", v["status"])
	assert.Equal(t, "/agents/"+agent+"/"+id+"/runs/"+run, r.header.Get("Location"))
	assert.Equal(t, r.header.Get("Location"), v["url"])
	return run
}

// waitFor follows a run's stream until an event satisfies ok.
func (c *client) waitFor(t *testing.T, agent, id, run string, ok func(sseEvent) bool) {
	t.Helper()
	s := c.stream(t, http.MethodGet, "/agents/"+agent+"/"+id+"/runs/"+run+"/events", nil, nil)
	defer s.close()
	for {
		e, more := s.next(t)
		require.True(t, more, "the run ended before the awaited event")
		if ok(e) {
			return
		}
	}
}

func testEvents(t *testing.T, c *client) {
	t.Run("sse_stream_of_a_run", func(t *testing.T) { testSSERun(t, c) })
	t.Run("resume_with_last_event_id", func(t *testing.T) { testSSEResume(t, c) })
	t.Run("background_run", func(t *testing.T) { testBackground(t, c) })
	t.Run("cancel_a_run", func(t *testing.T) { testCancelRun(t, c) })
	t.Run("delete_an_instance", func(t *testing.T) { testDeleteInstance(t, c) })
	t.Run("heartbeats", func(t *testing.T) { testHeartbeats(t, c) })
	t.Run("errors", func(t *testing.T) { testEventErrors(t, c) })
}

// A tool-using run streamed as SSE: the expected types in order,
// contiguous seq, ending with the result; the run resource and the runs
// list agree, with usage and cost summed from its turns.
func testSSERun(t *testing.T, c *client) {
	s := c.stream(t, http.MethodPost, "/agents/probe.triage/sse", strings.NewReader(`{"turns":2,"sleep_ms":5}`), nil)
	evs := s.all(t)
	require.NotEmpty(t, evs)
	run := evs[0].env.Run
	assert.Equal(t, "/agents/probe.triage/sse/runs/"+run, s.resp.Header.Get("Location"))
	checkWellFormed(t, evs, "probe.triage", "sse", run)
	assert.Equal(t, agents.TriageTypes(2, false), types(evs))
	assert.EqualValues(t, 1, evs[0].env.Seq, "the instance's first events")
	for _, e := range evs[1 : len(evs)-1] {
		assert.Equal(t, "s1", e.env.Session)
		assert.NotEmpty(t, e.env.Turn)
	}
	for _, e := range evs {
		if e.env.Type == event.TypeToolStart {
			assert.True(t, strings.HasPrefix(e.env.Call, "call_"))
			p, err := e.env.Payload()
			require.NoError(t, err)
			assert.Equal(t, "bash", p.(event.ToolStart).Tool)
		}
	}
	want := event.Usage{}
	for range 3 {
		want.Add(agents.TriageTurnUsage)
	}
	last, err := evs[len(evs)-1].env.Payload()
	require.NoError(t, err)
	fin := last.(event.RunFinish)
	assert.JSONEq(t, `{"turns":3,"tools":2}`, string(fin.Result))
	assert.Equal(t, want, fin.Usage)
	assert.InDelta(t, 3*agents.TriageTurnCost, fin.Cost, 1e-9)
	start, err := evs[0].env.Payload()
	require.NoError(t, err)
	assert.Equal(t, 1, start.(event.RunStart).Attempt)

	v := c.getRun(t, "probe.triage", "sse", run)
	assert.Equal(t, "done", v.Status)
	assert.Equal(t, "stream", v.Mode)
	assert.Equal(t, 1, v.Attempts)
	assert.JSONEq(t, `{"turns":3,"tools":2}`, string(v.Result))
	assert.Equal(t, want, v.Usage)
	assert.InDelta(t, 3*agents.TriageTurnCost, v.Cost, 1e-9)
	assert.False(t, v.Finished.Before(v.Started))
	assert.Nil(t, v.Error)

	// A synchronous run of the same instance comes next in its log and
	// the ledger.
	c.run(t, "probe.triage", "sse", `{"turns":1}`)
	r := c.do(t, http.MethodGet, "/agents/probe.triage/sse/runs", nil, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var list struct{ Runs []runView }
	require.NoError(t, json.Unmarshal(r.body, &list))
	require.Len(t, list.Runs, 2)
	assert.Equal(t, "sync", list.Runs[0].Mode, "newest first")
	assert.Equal(t, run, list.Runs[1].Run)
	all := c.stream(t, http.MethodGet, "/agents/probe.triage/sse/events?follow=0", nil, nil).all(t)
	require.Len(t, all, len(evs)+len(agents.TriageTypes(1, false)))
	for i, e := range all {
		assert.EqualValues(t, i+1, e.env.Seq)
	}
}

// A client that leaves mid-run and comes back with Last-Event-ID gets
// the rest exactly once; the run did not stop when it left.
func testSSEResume(t *testing.T, c *client) {
	s := c.stream(t, http.MethodPost, "/agents/probe.triage/resume", strings.NewReader(`{"turns":3,"sleep_ms":40}`), nil)
	var first []sseEvent
	for range 6 {
		e, ok := s.next(t)
		require.True(t, ok)
		first = append(first, e)
	}
	s.close() // the client goes
	run := first[0].env.Run
	lastID := first[len(first)-1].id

	rest := c.stream(t, http.MethodGet, "/agents/probe.triage/resume/runs/"+run+"/events", nil,
		map[string]string{"Last-Event-ID": strconv.FormatInt(lastID, 10)}).all(t)
	got := append(append([]sseEvent(nil), first...), rest...)
	checkWellFormed(t, got, "probe.triage", "resume", run)
	assert.Equal(t, agents.TriageTypes(3, false), types(got), "the rest exactly once, to the run's end")
	assert.Equal(t, lastID+1, rest[0].id)

	// The same from the log, with ?after= (for clients that cannot set a
	// header), and the whole run from the start.
	again := c.stream(t, http.MethodGet, fmt.Sprintf("/agents/probe.triage/resume/runs/%s/events?after=%d", run, lastID), nil, nil).all(t)
	assert.Equal(t, ids(rest), ids(again))
	whole := c.stream(t, http.MethodGet, "/agents/probe.triage/resume/runs/"+run+"/events", nil, nil).all(t)
	assert.Equal(t, ids(got), ids(whole))
	assert.Equal(t, "done", c.getRun(t, "probe.triage", "resume", run).Status)
}

func ids(evs []sseEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.id
	}
	return out
}

// A background run answers 202 at once, runs to its end, and is fetched.
func testBackground(t *testing.T, c *client) {
	run := c.background(t, "probe.triage", "bg", `{"turns":2,"sleep_ms":10}`)
	c.waitFor(t, "probe.triage", "bg", run, func(e sseEvent) bool { return event.Terminal(e.env.Type) })
	v := c.getRun(t, "probe.triage", "bg", run)
	assert.Equal(t, "done", v.Status)
	assert.Equal(t, "background", v.Mode)
	assert.JSONEq(t, `{"turns":3,"tools":2}`, string(v.Result))

	// Prefer: respond-async asks the same.
	r := c.do(t, http.MethodPost, "/agents/probe.triage/bg", strings.NewReader(`{"turns":1}`), map[string]string{"Prefer": "respond-async"})
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	assert.Equal(t, "respond-async", r.header.Get("Preference-Applied"))
	second := r.json(t)["run"].(string)
	c.waitFor(t, "probe.triage", "bg", second, func(e sseEvent) bool { return event.Terminal(e.env.Type) })
	assert.Equal(t, "done", c.getRun(t, "probe.triage", "bg", second).Status)

	// A background run whose payload does not decode fails, and says why.
	bad := c.background(t, "probe.triage", "bg", `{"turns":"two"}`)
	c.waitFor(t, "probe.triage", "bg", bad, func(e sseEvent) bool { return event.Terminal(e.env.Type) })
	v = c.getRun(t, "probe.triage", "bg", bad)
	assert.Equal(t, "failed", v.Status)
	require.NotNil(t, v.Error)
	assert.Equal(t, "invalid_payload", v.Error.Type)
}

// DELETE of a running run cancels it: its status is canceled, its stream
// ends with run.cancel, what it stored is whole, and the agent instance
// takes its next run.
func testCancelRun(t *testing.T, c *client) {
	key := "cancel-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	run := c.background(t, "probe.steps", "cancel", fmt.Sprintf(`{"steps":200,"sleep_ms":100,"key":%q}`, key))
	c.waitFor(t, "probe.steps", "cancel", run, func(e sseEvent) bool { return e.env.Type == event.TypeLog })

	r := c.do(t, http.MethodDelete, "/agents/probe.steps/cancel/runs/"+run, nil, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var v runView
	require.NoError(t, json.Unmarshal(r.body, &v))
	assert.Equal(t, "canceled", v.Status)
	require.NotNil(t, v.Error)
	assert.Equal(t, "canceled", v.Error.Type)
	assert.Equal(t, "canceled", c.getRun(t, "probe.steps", "cancel", run).Status)

	evs := c.stream(t, http.MethodGet, "/agents/probe.steps/cancel/runs/"+run+"/events", nil, nil).all(t)
	checkWellFormed(t, evs, "probe.steps", "cancel", run)
	lastEv, err := evs[len(evs)-1].env.Payload()
	require.NoError(t, err)
	assert.Equal(t, event.RunCancel{Reason: event.CancelRequested, Message: lastEv.(event.RunCancel).Message,
		DurationMs: lastEv.(event.RunCancel).DurationMs}, lastEv)

	// The steps it recorded are whole: done ones are 1, the rest 0.
	out := c.run(t, "probe.steps", "cancel", fmt.Sprintf(`{"steps":0,"key":%q}`, key))
	execs, _ := out["executions"].([]any)
	require.NotEmpty(t, execs)
	for i, n := range execs {
		if i > 0 && n == 1.0 {
			assert.Equal(t, 1.0, execs[i-1], "steps ran in order")
		}
		assert.Contains(t, []any{0.0, 1.0}, n)
	}
	assert.Less(t, len(execs), 201)

	r = c.do(t, http.MethodDelete, "/agents/probe.steps/cancel/runs/"+run, nil, nil)
	assert.Equal(t, http.StatusConflict, r.status, "%s", r.body)
	assert.Equal(t, "conflict", r.errorType(t))

	// A run queued behind a running one is canceled at once, and the
	// running one goes on.
	first := c.background(t, "probe.steps", "cancel", `{"steps":200,"sleep_ms":100}`)
	c.waitFor(t, "probe.steps", "cancel", first, func(e sseEvent) bool { return e.env.Type == event.TypeLog })
	queued := c.background(t, "probe.steps", "cancel", `{"steps":1}`)
	assert.Equal(t, "queued", c.getRun(t, "probe.steps", "cancel", queued).Status)
	r = c.do(t, http.MethodDelete, "/agents/probe.steps/cancel/runs/"+queued, nil, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.NoError(t, json.Unmarshal(r.body, &v))
	assert.Equal(t, "canceled", v.Status)
	assert.Zero(t, v.Attempts, "it never started")
	assert.Equal(t, "running", c.getRun(t, "probe.steps", "cancel", first).Status, "the running run goes on")
	qe := c.stream(t, http.MethodGet, "/agents/probe.steps/cancel/runs/"+queued+"/events", nil, nil).all(t)
	assert.Equal(t, []event.Type{event.TypeRunCancel}, types(qe))
	r = c.do(t, http.MethodDelete, "/agents/probe.steps/cancel/runs/"+first, nil, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	c.run(t, "probe.steps", "cancel", `{"steps":1}`) // the instance takes its next run
}

// DELETE of an agent instance cancels its runs and destroys its state:
// the ledger, the log and the agent's state are gone, and the next run
// starts it again empty.
func testDeleteInstance(t *testing.T, c *client) {
	before := c.visits(t, "doomed", "x")
	require.Equal(t, 1, before)
	run := c.background(t, "probe.steps", "doomed", `{"steps":200,"sleep_ms":100,"key":"k"}`)
	c.waitFor(t, "probe.steps", "doomed", run, func(e sseEvent) bool { return e.env.Type == event.TypeLog })

	r := c.do(t, http.MethodDelete, "/agents/probe.steps/doomed", nil, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	v := r.json(t)
	assert.Equal(t, true, v["deleted"])
	assert.Equal(t, []any{run}, v["canceled"])

	r = c.do(t, http.MethodGet, "/agents/probe.steps/doomed/runs/"+run, nil, nil)
	assert.Equal(t, http.StatusNotFound, r.status, "%s", r.body)
	r = c.do(t, http.MethodGet, "/agents/probe.steps/doomed/runs", nil, nil)
	assert.JSONEq(t, `{"runs":[]}`, string(r.body))
	evs := c.stream(t, http.MethodGet, "/agents/probe.steps/doomed/events?follow=0", nil, nil).all(t)
	assert.Empty(t, evs)
	out := c.run(t, "probe.steps", "doomed", `{"steps":0,"key":"k"}`)
	assert.Nil(t, out["executions"], "the agent's state went with the instance")
	evs = c.stream(t, http.MethodGet, "/agents/probe.steps/doomed/events?follow=0", nil, nil).all(t)
	require.NotEmpty(t, evs)
	assert.EqualValues(t, 1, evs[0].env.Seq, "the log starts again")

	// Another agent's instance of the same id is another agent instance.
	assert.Equal(t, before+1, c.visits(t, "doomed", "x"))
	r = c.do(t, http.MethodDelete, "/agents/hello/doomed", nil, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	assert.Equal(t, 1, c.visits(t, "doomed", "x"))
}

// An idle stream sends comments (the hosts run this suite with
// DAMPER_HEARTBEAT=1s), and a follower sees events as they come.
func testHeartbeats(t *testing.T, c *client) {
	c.run(t, "probe.triage", "beat", `{"turns":1}`)
	s := c.stream(t, http.MethodGet, "/agents/probe.triage/beat/events", nil, nil)
	n := len(agents.TriageTypes(1, false))
	for range n {
		_, ok := s.next(t)
		require.True(t, ok)
	}
	// Nothing new: the stream stays open with heartbeats; then a run's
	// events arrive on it.
	for s.comments == 0 {
		b, err := s.r.Peek(1)
		require.NoError(t, err)
		if b[0] != ':' {
			t.Fatalf("an event before any heartbeat: %q", b)
		}
		line, err := s.r.ReadString('\n')
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(line, ":"), "%q", line)
		s.comments++
	}
	c.run(t, "probe.triage", "beat", `{"turns":1}`)
	e, ok := s.next(t)
	require.True(t, ok)
	assert.EqualValues(t, n+1, e.env.Seq)
	assert.Equal(t, event.TypeRunStart, e.env.Type)

	// Without follow the stream ends with the last event there is: it
	// waits for nothing, so no heartbeat comes before its end.
	once := c.stream(t, http.MethodGet, "/agents/probe.triage/beat/events?follow=0", nil, nil)
	assert.Len(t, once.all(t), 2*n)
	assert.Zero(t, once.comments, "the stream waited before it ended")
}

func testEventErrors(t *testing.T, c *client) {
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		status       int
		typ          string
	}{
		{http.MethodGet, "/agents/probe.triage/none/runs/r_nope", nil, 404, "not_found"},
		{http.MethodDelete, "/agents/probe.triage/none/runs/r_nope", nil, 404, "not_found"},
		{http.MethodGet, "/agents/probe.triage/none/runs/r_nope/events", nil, 404, "not_found"},
		{http.MethodGet, "/agents/nope/none/runs", nil, 404, "not_found"},
		{http.MethodGet, "/agents/probe.triage/none/events", map[string]string{"Last-Event-ID": "seven"}, 400, "invalid_request"},
		{http.MethodGet, "/agents/probe.triage/none/events?after=-3", nil, 400, "invalid_request"},
		{http.MethodGet, "/agents/probe.triage/none/runs?limit=5000", nil, 400, "invalid_request"},
		{http.MethodPost, "/agents/probe.triage/none?background=perhaps", nil, 400, "invalid_request"},
		{http.MethodPut, "/agents/probe.triage/none/runs", nil, 405, "method_not_allowed"},
		{http.MethodGet, "/agents/probe.triage/none/runs/r_1/other", nil, 404, "not_found"},
	} {
		r := c.do(t, tc.method, tc.path, bytes.NewReader(nil), tc.hdr)
		assert.Equal(t, tc.status, r.status, "%s %s: %s", tc.method, tc.path, r.body)
		assert.Equal(t, tc.typ, r.errorType(t), "%s %s", tc.method, tc.path)
	}
	r := c.do(t, http.MethodGet, "/agents/probe.triage/never-ran/runs", nil, nil)
	assert.JSONEq(t, `{"runs":[]}`, string(r.body), "an instance that never ran has no runs")
}
