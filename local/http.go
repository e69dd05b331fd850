package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

// Handler serves the HTTP API of docs/http.md: GET /health, runs
// (POST /agents/{agent}/{id}, synchronous, streamed as SSE or in the
// background), their resources and event streams, and DELETE of a run or
// an agent instance.
func (h *Host) Handler() http.Handler {
	var token []byte
	if h.cfg.token != "" {
		sum := sha256.Sum256([]byte(h.cfg.token))
		token = sum[:]
	}
	return &handler{h: h, tokenHash: token}
}

type handler struct {
	h         *Host
	tokenHash []byte // sha256 of the token, nil when none is required
}

// route is a request's path, parsed: /agents/{agent}/{id}[/events |
// /runs[/{run}[/events]]].
type route struct {
	agent, id, run string
	sub            string // "", "events", "runs", "run", "run-events"
}

// parseRoute splits an escaped path into a route; ok is false when no
// route has its shape. The names are unescaped but not checked.
func parseRoute(escaped string) (r route, ok bool, err error) {
	segs := strings.Split(escaped, "/")
	if len(segs) < 4 || segs[0] != "" || segs[1] != "agents" || segs[2] == "" || segs[3] == "" {
		return r, false, nil
	}
	rest := segs[4:]
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && rest[0] == "events":
		r.sub = "events"
	case len(rest) == 1 && rest[0] == "runs":
		r.sub = "runs"
	case len(rest) == 2 && rest[0] == "runs" && rest[1] != "":
		r.sub = "run"
	case len(rest) == 3 && rest[0] == "runs" && rest[1] != "" && rest[2] == "events":
		r.sub = "run-events"
	default:
		return r, false, nil
	}
	var err1, err2, err3 error
	r.agent, err1 = url.PathUnescape(segs[2])
	r.id, err2 = url.PathUnescape(segs[3])
	if r.sub == "run" || r.sub == "run-events" {
		r.run, err3 = url.PathUnescape(segs[5])
	}
	return r, true, errors.Join(err1, err2, err3)
}

// allowed is each route's methods, for 405's Allow.
func (r route) allowed() string {
	switch r.sub {
	case "":
		return "POST, DELETE"
	case "run":
		return "GET, DELETE"
	}
	return "GET"
}

func (s *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", newRequestID())
	w.Header().Set("Content-Type", "application/json")

	// The checks run in the documented order: auth, route, method, name
	// grammar, unknown agent, size, JSON. Nothing before the run itself
	// touches stored state.
	if r.URL.EscapedPath() == "/health" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, "GET, HEAD")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "abi": wire.Version})
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, newError(http.StatusUnauthorized, errUnauthorized, "missing or wrong bearer token"))
		return
	}
	rt, ok, err := parseRoute(r.URL.EscapedPath())
	if !ok {
		writeError(w, newError(http.StatusNotFound, errNotFound, "no route for "+r.URL.EscapedPath()))
		return
	}
	allow := rt.allowed()
	if !slices.Contains(strings.Split(allow, ", "), r.Method) {
		methodNotAllowed(w, allow)
		return
	}
	if err != nil || !ValidName(rt.agent) || !ValidName(rt.id) {
		writeError(w, newError(http.StatusBadRequest, errInvalidName, "agent and id are 1 to 128 of A-Z a-z 0-9 . _ -, and neither . nor .."))
		return
	}
	if rt.run != "" && !ValidName(rt.run) {
		writeError(w, newError(http.StatusBadRequest, errInvalidName, "a run id is 1 to 128 of A-Z a-z 0-9 . _ -"))
		return
	}
	if !s.h.agents[rt.agent] {
		writeError(w, s.h.unknownAgent(rt.agent))
		return
	}
	switch {
	case rt.sub == "" && r.Method == http.MethodPost:
		s.post(w, r, rt)
	case rt.sub == "" && r.Method == http.MethodDelete:
		ids, err := s.h.Delete(r.Context(), rt.agent, rt.id)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"agent": rt.agent, "instance": rt.id, "deleted": true, "canceled": nonNil(ids)})
	case rt.sub == "runs":
		limit, herr := queryInt(r, "limit", 100, 1, 1000)
		if herr != nil {
			writeError(w, herr)
			return
		}
		runs, err := s.h.Runs(r.Context(), rt.agent, rt.id, limit)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"runs": nonNil(runs)})
	case rt.sub == "run" && r.Method == http.MethodGet:
		run, found, err := s.h.GetRun(r.Context(), rt.agent, rt.id, rt.run)
		if err == nil && !found {
			err = newError(http.StatusNotFound, errNotFound, "agent instance "+rt.agent+"/"+rt.id+" has no run "+rt.run)
		}
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, run)
	case rt.sub == "run" && r.Method == http.MethodDelete:
		run, err := s.h.Cancel(r.Context(), rt.agent, rt.id, rt.run, event.CancelRequested)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, run)
	case rt.sub == "events":
		s.stream(w, r, rt, "")
	case rt.sub == "run-events":
		if _, found, err := s.h.GetRun(r.Context(), rt.agent, rt.id, rt.run); err != nil || !found {
			if err == nil {
				err = newError(http.StatusNotFound, errNotFound, "agent instance "+rt.agent+"/"+rt.id+" has no run "+rt.run)
			}
			writeErr(w, err)
			return
		}
		s.stream(w, r, rt, rt.run)
	}
}

// post runs the agent: synchronously (the result as JSON), streamed (the
// run's events as SSE, with Accept: text/event-stream) or in the
// background (202 at once, with ?background=1 or Prefer: respond-async).
func (s *handler) post(w http.ResponseWriter, r *http.Request, rt route) {
	background, herr := queryBool(r, "background")
	if herr != nil {
		writeError(w, herr)
		return
	}
	preferAsync := preferRespondAsync(r.Header)
	background = background || preferAsync
	sse := acceptsEventStream(r.Header)
	payload, herr := readPayload(w, r)
	if herr != nil {
		writeError(w, herr)
		return
	}
	if !background && !sse {
		res, err := s.h.Run(r.Context(), rt.agent, rt.id, payload)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
		return
	}
	mode := ModeBackground
	if !background {
		mode = ModeStream
	}
	// Neither kind is canceled when its client goes: a stream's client may
	// resume it (GET …/runs/{run}/events, Last-Event-ID).
	run, err := s.h.Start(context.WithoutCancel(r.Context()), rt.agent, rt.id, payload, Mode(mode))
	if err != nil {
		writeErr(w, err)
		return
	}
	runURL := "/agents/" + url.PathEscape(rt.agent) + "/" + url.PathEscape(rt.id) + "/runs/" + run.ID
	if background {
		w.Header().Set("Location", runURL)
		if preferAsync {
			w.Header().Set("Preference-Applied", "respond-async")
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"run": run.ID, "status": run.Status, "url": runURL, "events": runURL + "/events"})
		return
	}
	w.Header().Set("Location", runURL)
	rt.run = run.ID
	s.serveEvents(w, r, rt, run.ID, 0, true)
}

// stream serves GET of an event stream: the instance's (run "") or a
// run's, resuming after Last-Event-ID (or ?after=).
func (s *handler) stream(w http.ResponseWriter, r *http.Request, rt route, run string) {
	after, herr := lastEventID(r)
	if herr != nil {
		writeError(w, herr)
		return
	}
	follow := true
	if v := r.URL.Query().Get("follow"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, newError(http.StatusBadRequest, errInvalidRequest, "follow is a boolean (1, true, 0, false)"))
			return
		}
		follow = b
	}
	s.serveEvents(w, r, rt, run, after, follow)
}

// serveEvents writes the events after seq after as SSE: for a run, until
// its last event (run.finish, run.error or run.cancel); for the instance,
// until the client goes (or, without follow, the end of the log).
func (s *handler) serveEvents(w http.ResponseWriter, r *http.Request, rt route, run string, after int64, follow bool) {
	ai, release, err := s.h.acquire(instanceKey{rt.agent, rt.id})
	if err != nil {
		writeErr(w, err)
		return
	}
	defer release()
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	sw := &sseWriter{w: w, rc: rc}
	ctx := r.Context()
	heartbeat := time.NewTicker(s.h.cfg.heartbeat)
	defer heartbeat.Stop()
	for {
		f := ai.feed
		evs, next, ok, closed := f.since(after, run)
		if closed {
			return
		}
		if !ok {
			stored, err := ai.inst.ReadEvents(ctx, after, run, 512)
			if err != nil {
				sw.comment("error: " + err.Error())
				return
			}
			evs = make([]frame, len(stored))
			for i := range stored {
				evs[i] = frame{env: stored[i], sse: sseFrame(nil, &stored[i])}
			}
		}
		// What is there goes in one write.
		end := false
		sw.buf = sw.buf[:0]
		for i := range evs {
			sw.buf = append(sw.buf, evs[i].sse...)
			after = evs[i].env.Seq
			if run != "" && event.Terminal(evs[i].env.Type) {
				end = true
				break
			}
		}
		if len(sw.buf) > 0 && sw.write(sw.buf) != nil {
			return
		}
		if end {
			return
		}
		if len(evs) > 0 && !ok {
			continue // more may be in the database
		}
		// Here the stream has every event there is.
		if !follow || len(evs) == 0 && run != "" && s.runEnded(ctx, ai, run) {
			return
		}
		select {
		case <-next:
		case <-heartbeat.C:
			if sw.comment("ping") != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// runEnded reports whether a run's stream has nothing more to wait for:
// the run is finished (its last events may have been pruned) or gone.
func (s *handler) runEnded(ctx context.Context, ai *agentInstance, run string) bool {
	s.h.mu.Lock()
	_, live := s.h.runs[run]
	s.h.mu.Unlock()
	if live {
		return false
	}
	r, found, err := ai.inst.GetRun(ctx, run)
	if err != nil || !found {
		return true
	}
	return r.Status != StatusQueued && r.Status != StatusRunning
}

// sseWriter writes SSE events, each flushed, each under its own deadline:
// a client that stops reading cannot hold the stream.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
}

func (s *sseWriter) comment(text string) error {
	return s.write([]byte(": " + strings.ReplaceAll(text, "\n", " ") + "\n\n"))
}

func (s *sseWriter) write(b []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(responseWriteTimeout))
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// lastEventID reads where a stream resumes: the Last-Event-ID header, or
// the after query parameter, a seq (0: from the start).
func lastEventID(r *http.Request) (int64, *Error) {
	v := r.Header.Get("Last-Event-ID")
	what := "Last-Event-ID"
	if q := r.URL.Query().Get("after"); q != "" && v == "" {
		v, what = q, "after"
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, newError(http.StatusBadRequest, errInvalidRequest, what+" is an event's seq, a whole number ≥ 0")
	}
	return n, nil
}

func queryBool(r *http.Request, name string) (bool, *Error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, newError(http.StatusBadRequest, errInvalidRequest, name+" is a boolean (1, true, 0, false)")
	}
	return b, nil
}

func queryInt(r *http.Request, name string, def, lo, hi int) (int, *Error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, newError(http.StatusBadRequest, errInvalidRequest, name+" is a whole number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	return n, nil
}

// preferRespondAsync reports whether a Prefer header (RFC 7240) asks for
// respond-async.
func preferRespondAsync(h http.Header) bool {
	for _, line := range h.Values("Prefer") {
		for _, p := range strings.Split(line, ",") {
			tok, _, _ := strings.Cut(strings.TrimSpace(p), ";")
			tok, _, _ = strings.Cut(tok, "=")
			if strings.EqualFold(strings.TrimSpace(tok), "respond-async") {
				return true
			}
		}
	}
	return false
}

// acceptsEventStream reports whether the client asks for text/event-stream.
func acceptsEventStream(h http.Header) bool {
	for _, line := range h.Values("Accept") {
		for _, p := range strings.Split(line, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(p))
			if err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// authorized compares sha256 digests in constant time, so neither the
// token's bytes nor its length leak through timing.
func (s *handler) authorized(r *http.Request) bool {
	if s.tokenHash == nil {
		return true
	}
	// One Authorization field: of several, proxies and servers read
	// different ones (workerd joins them, and the Worker refuses that).
	vals := r.Header.Values("Authorization")
	if len(vals) != 1 {
		return false
	}
	auth := vals[0]
	const prefix = "bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	sum := sha256.Sum256([]byte(auth[len(prefix):]))
	return subtle.ConstantTimeCompare(sum[:], s.tokenHash) == 1
}

// readPayload reads the body, no further than the limit, and checks it is
// one JSON value (an empty body is null).
func readPayload(w http.ResponseWriter, r *http.Request) (json.RawMessage, *Error) {
	tooLarge := newError(http.StatusRequestEntityTooLarge, errTooLarge, "the body is over 1 MiB (1048576 bytes)")
	if r.ContentLength > wire.MaxPayload {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxPayload))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, newError(http.StatusBadRequest, errInvalidJSON, "reading the body: "+err.Error())
	}
	if len(body) == 0 {
		return json.RawMessage("null"), nil
	}
	if !json.Valid(body) {
		return nil, newError(http.StatusBadRequest, errInvalidJSON, "the body is not one JSON value")
	}
	return bytes.TrimSpace(body), nil
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, newError(http.StatusMethodNotAllowed, errMethod, "use "+allow))
}

// writeErr writes err: an *Error with its status, anything else as 500.
func writeErr(w http.ResponseWriter, err error) {
	var he *Error
	if !errors.As(err, &he) {
		he = newError(http.StatusInternalServerError, errInternal, err.Error())
	}
	writeError(w, he)
}

func writeError(w http.ResponseWriter, e *Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, map[string]*Error{"error": e})
}

// responseWriteTimeout bounds writing a response once it is ready: a client
// that stops reading cannot hold the connection.
const responseWriteTimeout = 30 * time.Second

func writeJSON(w http.ResponseWriter, status int, v any) {
	// Not every ResponseWriter has a deadline (httptest's has none).
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(responseWriteTimeout))
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"type":"internal","message":"encoding the response failed"}}`)
	}
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
