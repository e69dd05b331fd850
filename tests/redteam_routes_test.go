package tests

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// routeRow is one request of the third red team's route table
// (docs/redteam.md, "Round 3"): a raw path (sent as written, escapes and
// dot segments included), its method and headers, and the statuses the
// attack may end with. Every row must fail closed: unless ownRun, no
// answer holds the victim instance's run or anything of its events.
type routeRow struct {
	name   string
	method string
	path   string // {V}: the victim's run id
	hdr    map[string]string
	// auth replaces the client's Authorization header ("-": none).
	auth []string
	want []int
	// ownRun: the row addresses the victim itself (its id spelled
	// otherwise), so its run may be in the answer.
	ownRun bool
}

func routeRows(tok string) []routeRow {
	long := strings.Repeat("a", 129)
	huge := strings.Repeat("b", 40_000)
	ok, bad, nf, na := http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed
	un := http.StatusUnauthorized
	return []routeRow{
		// Auth.
		{name: "no_token", method: "GET", path: "/agents/hello/victim/runs/{V}", auth: []string{"-"}, want: []int{un}},
		{name: "token_in_query", method: "GET", path: "/agents/hello/victim/runs/{V}?access_token=" + tok + "&token=" + tok, auth: []string{"-"}, want: []int{un}},
		{name: "token_as_basic", method: "GET", path: "/agents/hello/victim/runs/{V}", auth: []string{"Basic " + tok}, want: []int{un}},
		{name: "token_prefix", method: "GET", path: "/agents/hello/victim/runs/{V}", auth: []string{"Bearer " + tok[:len(tok)-1]}, want: []int{un}},
		{name: "token_and_more", method: "GET", path: "/agents/hello/victim/runs/{V}", auth: []string{"Bearer " + tok + "x"}, want: []int{un}},
		{name: "bearer_without_space", method: "GET", path: "/agents/hello/victim/runs/{V}", auth: []string{"Bearer" + tok}, want: []int{un}},
		{name: "empty_bearer", method: "GET", path: "/agents/hello/victim/runs/{V}", auth: []string{"Bearer "}, want: []int{un}},
		{name: "wrong_then_right_header", method: "GET", path: "/agents/hello/victim/runs/{V}", auth: []string{"Bearer wrong", "Bearer " + tok}, want: []int{un}},
		// Of several fields, servers read different ones: both hosts refuse.
		{name: "right_then_wrong_header", method: "GET", path: "/agents/hello/victim/runs/{V}", auth: []string{"Bearer " + tok, "Bearer wrong"}, want: []int{un}},
		{name: "right_header_twice", method: "GET", path: "/agents/hello/victim/runs/{V}", auth: []string{"Bearer " + tok, "Bearer " + tok}, want: []int{un}},
		{name: "no_token_on_events", method: "GET", path: "/agents/hello/victim/events?follow=0", auth: []string{"-"}, want: []int{un}},
		{name: "no_token_on_run_events", method: "GET", path: "/agents/hello/victim/runs/{V}/events", auth: []string{"-"}, want: []int{un}},
		{name: "no_token_health_path_trick", method: "GET", path: "/health/../agents/hello/victim/runs/{V}", auth: []string{"-"}, want: []int{un, nf}},
		{name: "no_token_health_prefix", method: "GET", path: "/health%2F..%2Fagents/hello/victim/runs/{V}", auth: []string{"-"}, want: []int{un, nf}},
		// Another instance's run id: never its run, nor its events.
		{name: "other_instance_run", method: "GET", path: "/agents/hello/attacker/runs/{V}", want: []int{nf}},
		{name: "other_instance_run_events", method: "GET", path: "/agents/hello/attacker/runs/{V}/events", want: []int{nf}},
		{name: "other_instance_run_delete", method: "DELETE", path: "/agents/hello/attacker/runs/{V}", want: []int{nf}},
		{name: "other_instance_events_after_0", method: "GET", path: "/agents/hello/attacker/events?follow=0&run={V}", want: []int{ok}},
		{name: "other_instance_runs_query_smuggling", method: "GET", path: "/agents/hello/attacker/runs?run={V}&id=victim&instance=victim", want: []int{ok}},
		{name: "other_instance_run_query_instance", method: "GET", path: "/agents/hello/attacker/runs/{V}?instance=victim&agent=hello", want: []int{nf}},
		{name: "other_agent_same_id", method: "GET", path: "/agents/probe.emit/victim/runs/{V}", want: []int{nf}},
		// Dot segments and escapes.
		// Local takes dot segments as names (404: no such route); the
		// Worker's URL parser resolves them first, so these reach the
		// victim by its own path, which the token already allows.
		{name: "dotdot_to_victim", method: "GET", path: "/agents/hello/attacker/runs/../../victim/runs/{V}", want: []int{nf, ok}, ownRun: true},
		{name: "dotdot_id", method: "GET", path: "/agents/hello/../hello/victim/runs/{V}", want: []int{nf, bad, ok}, ownRun: true},
		{name: "escaped_dotdot_id", method: "GET", path: "/agents/hello/%2e%2e/runs/{V}", want: []int{bad, nf, na}},
		{name: "escaped_dotdot_upper", method: "GET", path: "/agents/hello/%2E%2E/victim/runs/{V}", want: []int{bad, nf}},
		{name: "double_escaped_dotdot", method: "GET", path: "/agents/hello/%252e%252e/victim/runs/{V}", want: []int{bad, nf}},
		{name: "escaped_slash_in_id", method: "GET", path: "/agents/hello/attacker%2F..%2Fvictim/runs/{V}", want: []int{bad}},
		{name: "escaped_slash_run", method: "GET", path: "/agents/hello/attacker/runs/..%2F..%2Fvictim%2Fruns%2F{V}", want: []int{bad}},
		{name: "escaped_backslash", method: "GET", path: "/agents/hello/attacker%5C..%5Cvictim/runs/{V}", want: []int{bad}},
		{name: "double_escaped_slash", method: "GET", path: "/agents/hello/attacker%252Fvictim/runs/{V}", want: []int{bad}},
		{name: "nul_in_id", method: "GET", path: "/agents/hello/victim%00/runs/{V}", want: []int{bad}},
		{name: "nul_in_run", method: "GET", path: "/agents/hello/victim/runs/{V}%00", want: []int{bad}},
		{name: "unicode_id", method: "GET", path: "/agents/hello/vi%C3%A7tim/runs/{V}", want: []int{bad}},
		{name: "fullwidth_dots", method: "GET", path: "/agents/hello/%EF%BC%8E%EF%BC%8E/runs/{V}", want: []int{bad}},
		{name: "bad_escape", method: "GET", path: "/agents/hello/vic%zztim/runs/{V}", want: []int{bad}},
		// An escaped letter: local decodes the segment (the victim itself),
		// the Worker does not (an id outside the grammar).
		{name: "escaped_letter_id", method: "GET", path: "/agents/hello/%76ictim/runs/{V}", want: []int{ok, bad}, ownRun: true},
		// Case, trailing slashes, empty segments, length.
		{name: "agent_upper", method: "GET", path: "/agents/HELLO/victim/runs/{V}", want: []int{nf}},
		{name: "id_upper", method: "GET", path: "/agents/hello/VICTIM/runs/{V}", want: []int{nf}},
		{name: "run_upper", method: "GET", path: "/agents/hello/victim/runs/{VU}", want: []int{nf}},
		{name: "runs_upper", method: "GET", path: "/agents/hello/victim/RUNS/{V}", want: []int{nf}},
		{name: "agents_upper", method: "GET", path: "/Agents/hello/victim/runs/{V}", want: []int{nf}},
		{name: "trailing_slash_run", method: "GET", path: "/agents/hello/victim/runs/{V}/", want: []int{nf}},
		{name: "trailing_slash_events", method: "GET", path: "/agents/hello/victim/events/", want: []int{nf}},
		{name: "trailing_slash_runs", method: "GET", path: "/agents/hello/victim/runs/", want: []int{nf}},
		{name: "empty_segment", method: "GET", path: "/agents/hello//victim/runs/{V}", want: []int{nf}},
		{name: "leading_double_slash", method: "GET", path: "//agents/hello/victim/runs/{V}", want: []int{nf}},
		{name: "id_129", method: "GET", path: "/agents/hello/" + long + "/runs", want: []int{bad}},
		{name: "id_128", method: "GET", path: "/agents/hello/" + long[:128] + "/runs", want: []int{ok}},
		{name: "id_40k", method: "GET", path: "/agents/hello/" + huge + "/runs", want: []int{bad, http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge}},
		{name: "run_40k", method: "GET", path: "/agents/hello/victim/runs/" + huge, want: []int{bad, http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge}},
		// Methods.
		{name: "head_run", method: "HEAD", path: "/agents/hello/victim/runs/{V}", want: []int{na}},
		{name: "options_run", method: "OPTIONS", path: "/agents/hello/victim/runs/{V}", want: []int{na}},
		{name: "trace_run", method: "TRACE", path: "/agents/hello/victim/runs/{V}", want: []int{na, http.StatusNotImplemented, bad}},
		{name: "put_instance", method: "PUT", path: "/agents/hello/victim", want: []int{na}},
		{name: "override_delete_on_get", method: "GET", path: "/agents/hello/victim/runs/{V}", hdr: map[string]string{"X-HTTP-Method-Override": "DELETE", "X-Method-Override": "DELETE"}, want: []int{ok}, ownRun: true},
		{name: "override_query_delete", method: "GET", path: "/agents/hello/victim/runs?_method=DELETE", want: []int{ok}, ownRun: true},
		// Resuming and limits.
		{name: "after_negative", method: "GET", path: "/agents/hello/victim/events?follow=0&after=-1", want: []int{bad}},
		{name: "after_text", method: "GET", path: "/agents/hello/victim/events?follow=0&after=abc", want: []int{bad}},
		{name: "after_float", method: "GET", path: "/agents/hello/victim/events?follow=0&after=1.5", want: []int{bad}},
		{name: "after_exp", method: "GET", path: "/agents/hello/victim/events?follow=0&after=1e3", want: []int{bad}},
		{name: "after_hex", method: "GET", path: "/agents/hello/victim/events?follow=0&after=0x10", want: []int{bad}},
		{name: "after_2_63", method: "GET", path: "/agents/hello/victim/events?follow=0&after=9223372036854775808", want: []int{bad}},
		{name: "after_2_64", method: "GET", path: "/agents/hello/victim/events?follow=0&after=18446744073709551616", want: []int{bad}},
		{name: "after_2_63_minus_1", method: "GET", path: "/agents/hello/victim/events?follow=0&after=9223372036854775807", want: []int{ok, bad}, ownRun: true},
		{name: "last_event_id_negative", method: "GET", path: "/agents/hello/victim/runs/{V}/events", hdr: map[string]string{"Last-Event-ID": "-5"}, want: []int{bad}},
		{name: "last_event_id_text", method: "GET", path: "/agents/hello/victim/runs/{V}/events", hdr: map[string]string{"Last-Event-ID": "x1"}, want: []int{bad}},
		{name: "last_event_id_2_63", method: "GET", path: "/agents/hello/victim/runs/{V}/events", hdr: map[string]string{"Last-Event-ID": "9223372036854775808"}, want: []int{bad}},
		{name: "last_event_id_bad_after_good", method: "GET", path: "/agents/hello/victim/runs/{V}/events?after=-1", hdr: map[string]string{"Last-Event-ID": "1"}, want: []int{ok}, ownRun: true},
		{name: "follow_not_bool", method: "GET", path: "/agents/hello/victim/events?follow=maybe", want: []int{bad}},
		{name: "limit_0", method: "GET", path: "/agents/hello/victim/runs?limit=0", want: []int{bad}},
		{name: "limit_1001", method: "GET", path: "/agents/hello/victim/runs?limit=1001", want: []int{bad}},
		{name: "limit_negative", method: "GET", path: "/agents/hello/victim/runs?limit=-1", want: []int{bad}},
		{name: "limit_exp", method: "GET", path: "/agents/hello/victim/runs?limit=1e2", want: []int{bad}},
		{name: "limit_trailing", method: "GET", path: "/agents/hello/victim/runs?limit=10abc", want: []int{bad}},
		{name: "limit_2_63", method: "GET", path: "/agents/hello/victim/runs?limit=9223372036854775808", want: []int{bad}},
		{name: "limit_space", method: "GET", path: "/agents/hello/victim/runs?limit=%205", want: []int{bad}},
	}
}

// TestRedTeamRoutes is the third red team's table of path, auth and query
// tricks on the run and event routes, on both hosts: each row must fail
// closed, no row may hand out another instance's run or events, and the
// victim's run and log are whole afterwards.
func TestRedTeamRoutes(t *testing.T) {
	forEachHost(t, token, nil, func(t *testing.T, h host) {
		c := &client{h: h, token: token}
		r := c.post(t, "hello", "victim", `{"name":"victim-marker"}`)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		victim := r.json(t)["run"].(string)
		c.visits(t, "attacker", "a")
		before := c.do(t, http.MethodGet, "/agents/hello/victim/events?follow=0", nil, nil)
		require.Equal(t, http.StatusOK, before.status)
		u, err := url.Parse(h.URL())
		require.NoError(t, err)
		for _, row := range routeRows(token) {
			t.Run(row.name, func(t *testing.T) {
				path := strings.ReplaceAll(row.path, "{VU}", strings.ToUpper(victim))
				path = strings.ReplaceAll(path, "{V}", victim)
				auth := row.auth
				if auth == nil {
					auth = []string{"Bearer " + token}
				} else if auth[0] == "-" {
					auth = nil
				}
				status, body := rawRequest(t, u.Host, row.method, path, auth, row.hdr)
				assert.Contains(t, row.want, status, "%s %s: %s", row.method, path, truncate([]byte(body)))
				// An error may name the path it was asked (the run id the
				// client sent); an answer never holds the victim's run.
				if !row.ownRun {
					if status < 300 {
						assert.NotContains(t, body, victim, "the victim's run id in the answer")
					}
					assert.NotContains(t, body, "victim-marker", "the victim's data in the answer")
				}
			})
		}
		// The victim is whole: its run, its log, and nothing was deleted.
		v := c.getRun(t, "hello", "victim", victim)
		assert.Equal(t, "done", v.Status)
		after := c.do(t, http.MethodGet, "/agents/hello/victim/events?follow=0", nil, nil)
		assert.Equal(t, string(before.body), string(after.body), "the victim's log changed")
		assert.Equal(t, 2, c.visits(t, "victim", "v"), "the victim's state survived")
	})
}

// rawRequest sends one HTTP/1.1 request with the path exactly as written
// (net/http would clean or re-escape some), and returns the status and
// the body (at most 64 KiB of it; an event stream with follow=0 ends).
func rawRequest(t *testing.T, hostport, method, path string, auth []string, hdr map[string]string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", hostport)
	require.NoError(t, err)
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, hostport)
	for _, a := range auth {
		fmt.Fprintf(&b, "Authorization: %s\r\n", a)
	}
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	_, err = conn.Write([]byte(b.String()))
	require.NoError(t, err)
	req, err := http.NewRequest(method, "http://"+hostport+"/", nil)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body := make([]byte, 64<<10)
	n, _ := io.ReadFull(resp.Body, body)
	return resp.StatusCode, string(body[:n])
}

// rss is a process's resident set, in bytes, from /proc.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

// TestRedTeamSSE attacks the event streams' resources on both hosts:
// streams that never read on an instance whose run floods its log, many
// at once, and a client that reconnects in a tight loop. The host must
// keep serving, every run must end, a reading stream must get every event
// exactly once, and the local host's memory must stay bounded.
func TestRedTeamSSE(t *testing.T) {
	const (
		events   = 3000
		stalled  = 24
		reconn   = 150
		rssBound = 256 << 20 // growth allowed over the host's baseline
	)
	forEachHost(t, token, nil, func(t *testing.T, h host) {
		c := &client{h: h, token: token}
		lh, local := h.(*localHost)
		var base int64
		if local {
			base = rss(t, lh.cmd.Process.Pid)
		}
		u, err := url.Parse(h.URL())
		require.NoError(t, err)
		// Streams that send their request and never read a byte.
		var conns []net.Conn
		for range stalled {
			conn, err := net.Dial("tcp", u.Host)
			require.NoError(t, err)
			conns = append(conns, conn)
			_, err = fmt.Fprintf(conn, "GET /agents/probe.emit/flood/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n", u.Host, token)
			require.NoError(t, err)
		}
		defer func() {
			for _, conn := range conns {
				conn.Close()
			}
		}()
		// One stream that reads.
		s := c.stream(t, http.MethodGet, "/agents/probe.emit/flood/events", nil, nil)
		run := c.background(t, "probe.emit", "flood", fmt.Sprintf(`{"events":%d}`, events))
		var got []sseEvent
		for {
			e, more := s.next(t)
			require.True(t, more, "the reading stream ended early")
			if e.env.Run != run {
				continue
			}
			got = append(got, e)
			if e.typ == "run.finish" || e.typ == "run.error" {
				break
			}
		}
		s.close()
		assert.Equal(t, "run.finish", got[len(got)-1].typ)
		deltas := 0
		for _, e := range got {
			if e.typ == "text.delta" {
				deltas++
			}
		}
		assert.Equal(t, events, deltas, "every delta once")
		for i := 1; i < len(got); i++ {
			assert.Equal(t, got[i-1].id+1, got[i].id, "contiguous at %d", i)
		}
		assert.Equal(t, "done", c.getRun(t, "probe.emit", "flood", run).Status)
		// The host serves other instances, and this one, while the
		// stalled streams hold on.
		assert.Equal(t, 1, c.visits(t, "sse-other", "x"))
		r := c.post(t, "probe.emit", "flood", `{"events":1}`)
		assert.Equal(t, http.StatusOK, r.status, "%s", r.body)
		// A client that reconnects in a tight loop, from the start each time.
		var wg sync.WaitGroup
		var mu sync.Mutex
		fails := 0
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < reconn; i += 3 {
					req, err := http.NewRequest(http.MethodGet, h.URL()+"/agents/probe.emit/flood/runs/"+run+"/events", nil)
					if err != nil {
						panic(err)
					}
					req.Header.Set("Authorization", "Bearer "+token)
					req.Header.Set("Last-Event-ID", strconv.Itoa(events-5))
					resp, err := http.DefaultClient.Do(req)
					if err != nil || resp.StatusCode != http.StatusOK {
						mu.Lock()
						fails++
						mu.Unlock()
						if err == nil {
							resp.Body.Close()
						}
						continue
					}
					// Reads only the first bytes, then hangs up.
					_, _ = resp.Body.Read(make([]byte, 64))
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		assert.Zero(t, fails, "reconnects refused")
		assert.Equal(t, 2, c.visits(t, "sse-other", "x"), "the host did not survive the reconnects")
		if local {
			grew := rss(t, lh.cmd.Process.Pid) - base
			t.Logf("local host RSS grew %d KiB over %d KiB", grew>>10, base>>10)
			assert.Less(t, grew, int64(rssBound), "the host's memory grew without bound")
		}
	})
}
