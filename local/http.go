package local

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/damperdev/damper/internal/wire"
)

// Handler serves the HTTP API of docs/http.md: GET /health and
// POST /agents/{agent}/{id}.
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

func (s *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", newRequestID())
	w.Header().Set("Content-Type", "application/json")

	// The checks run in the documented order: auth, route, method, name
	// grammar, unknown agent, size, JSON. Nothing before the run itself
	// touches stored state.
	segs := strings.Split(r.URL.EscapedPath(), "/")
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
	if len(segs) != 4 || segs[0] != "" || segs[1] != "agents" || segs[2] == "" || segs[3] == "" {
		writeError(w, newError(http.StatusNotFound, errNotFound, "no route for "+r.URL.EscapedPath()))
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	agent, err1 := url.PathUnescape(segs[2])
	id, err2 := url.PathUnescape(segs[3])
	if err1 != nil || err2 != nil || !ValidName(agent) || !ValidName(id) {
		writeError(w, newError(http.StatusBadRequest, errInvalidName, "agent and id are 1 to 128 of A-Z a-z 0-9 . _ -, and neither . nor .."))
		return
	}
	if !s.h.agents[agent] {
		writeError(w, s.h.unknownAgent(agent))
		return
	}
	payload, werr := readPayload(w, r)
	if werr != nil {
		writeError(w, werr)
		return
	}
	res, err := s.h.Run(r.Context(), agent, id, payload)
	if err != nil {
		var he *Error
		if !errors.As(err, &he) {
			he = newError(http.StatusInternalServerError, errInternal, err.Error())
		}
		writeError(w, he)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// authorized compares sha256 digests in constant time, so neither the
// token's bytes nor its length leak through timing.
func (s *handler) authorized(r *http.Request) bool {
	if s.tokenHash == nil {
		return true
	}
	auth := r.Header.Get("Authorization")
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
