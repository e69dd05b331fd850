package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/local"
	"github.com/damperdev/damper/runtime/event"
	"github.com/damperdev/damper/tests/agents"
)

// These tests run the damper binary itself, as a CI job does.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the damper CLI once per test process.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "damper-cli-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "damper")
		root, err := testmodule.RepoRoot()
		if err != nil {
			binErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/damper")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// cli is one damper command to run, with the test module and its own data.
type cli struct {
	t    *testing.T
	data string
	env  []string
}

func newCLI(t *testing.T) *cli {
	return &cli{t: t, data: t.TempDir()}
}

func (c *cli) command(args ...string) *exec.Cmd {
	c.t.Helper()
	if len(args) > 0 && args[0] == "run" {
		args = append(args, "--module", testmodule.Path(c.t), "--data", c.data)
	}
	cmd := exec.Command(binary(c.t), args...)
	cmd.Env = append(os.Environ(), c.env...)
	return cmd
}

// run runs a command to its end and returns its exit code and output.
func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	cmd := c.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), out.String(), errb.String()
	}
	require.NoError(c.t, err)
	return 0, out.String(), errb.String()
}

func TestCLIExitCodes(t *testing.T) {
	c := newCLI(t)
	payload := filepath.Join(t.TempDir(), "p.json")
	require.NoError(t, os.WriteFile(payload, []byte(`{"name":"File"}`), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string // in stdout
	}{
		{"success", []string{"run", "hello", `{"name":"Ada"}`}, 0, `"greeting": "Hello, Ada!"`},
		{"payload from a file", []string{"run", "hello", "@" + payload}, 0, `"greeting": "Hello, File!"`},
		{"run failure", []string{"run", "probe.fail"}, 1, `"agent_error"`},
		{"run timeout", []string{"run", "probe.sleep", `{"ms":60000}`, "--timeout", "300ms"}, 1, `"canceled"`},
		{"payload not JSON", []string{"run", "hello", `{"name":`}, 2, ""},
		{"payload of the wrong type", []string{"run", "hello", `{"name":1}`}, 2, `"invalid_payload"`},
		{"unknown agent", []string{"run", "nope"}, 2, `"not_found"`},
		{"bad instance id", []string{"run", "hello", "--id", "a/b"}, 2, `"invalid_name"`},
		{"payload file missing", []string{"run", "hello", "@" + filepath.Join(t.TempDir(), "none.json")}, 2, ""},
		{"unknown sandbox", []string{"run", "hello", "--sandbox", "vm"}, 2, ""},
		{"unknown flag", []string{"run", "hello", "--frobnicate"}, 2, ""},
		{"no agent", []string{"run"}, 2, ""},
		{"help", []string{"run", "--help"}, 0, ""},
		{"events: no instance", []string{"events"}, 2, ""},
		{"events: bad instance", []string{"events", "hello"}, 2, ""},
		{"runs: bad limit", []string{"runs", "hello/x", "--limit", "0"}, 2, ""},
		{"runs --help", []string{"runs", "--help"}, 0, ""},
		{"events --help", []string{"events", "--help"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := c.run(tc.args...)
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			assert.Contains(t, out, tc.out)
		})
	}
}

// --json prints every event as a JSON line, then the result.
func TestCLIJSONLines(t *testing.T) {
	code, out, errOut := newCLI(t).run("run", "probe.triage", `{"turns":2}`, "--json")
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var types []event.Type
	for i, line := range lines[:len(lines)-1] {
		var e event.Envelope
		require.NoError(t, json.Unmarshal([]byte(line), &e), "line %d: %s", i, line)
		assert.EqualValues(t, i+1, e.Seq)
		types = append(types, e.Type)
	}
	assert.Equal(t, agents.TriageTypes(2, false), types)
	var res struct {
		Run    string          `json:"run"`
		Result json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &res))
	assert.JSONEq(t, `{"turns":3,"tools":2}`, string(res.Result))
	assert.NotContains(t, errOut, "▸", "nothing rendered for people with --json")
}

// --out writes the result to a file.
func TestCLIOut(t *testing.T) {
	out := filepath.Join(t.TempDir(), "result.json")
	code, stdout, errOut := newCLI(t).run("run", "hello", `{"name":"Out"}`, "--out", out)
	require.Equal(t, 0, code, errOut)
	assert.Empty(t, stdout)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.JSONEq(t, `{"greeting":"Hello, Out!","visits":1}`, string(b))
}

// SIGINT cancels the run cleanly: exit 130, and the ledger says canceled,
// interrupted.
func TestCLIInterrupt(t *testing.T) {
	c := newCLI(t)
	cmd := c.command("run", "probe.sleep", `{"ms":600000}`, "--json", "--id", "int")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stdout)
	require.True(t, lines.Scan(), "the first event: %s", errb.String())
	assert.Contains(t, lines.Text(), `"type":"run.start"`)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	var last string
	for lines.Scan() {
		last = lines.Text()
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	assert.Equal(t, 130, exit.ExitCode(), "%s", errb.String())
	assert.Contains(t, last, `"canceled"`)

	wasm, err := os.ReadFile(testmodule.Path(t))
	require.NoError(t, err)
	h, err := local.New(context.Background(), wasm, local.NewConfig().WithDataDir(c.data))
	require.NoError(t, err)
	defer h.Close(context.Background())
	runs, err := h.Runs(context.Background(), "probe.sleep", "int", 10)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	assert.Equal(t, local.StatusCanceled, runs[0].Status)
	assert.Equal(t, local.ModeCLI, runs[0].Mode)
	n, err := h.Resume(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n, "a canceled run is not resumed")
}

// On a terminal, damper run shows the tool calls and the commands as
// they happen, under a status line a spinner keeps alive.
func TestCLIRendersInATerminal(t *testing.T) {
	cmd := newCLI(t).command("run", "probe.triage", `{"turns":2,"sleep_ms":120}`)
	f, err := pty.Start(cmd)
	require.NoError(t, err)
	defer f.Close()
	var out bytes.Buffer
	_, _ = io.Copy(&out, f) // until the process closes the terminal (EIO)
	require.NoError(t, cmd.Wait())
	text := out.String()
	for _, want := range []string{"▸ bash {\"command\":\"grep -rn bug1 .\"}", "$ grep -rn bug2 .", "✓ exit 0", "Let me check.", "✓ done in", "tokens", `"turns": 3`} {
		assert.Contains(t, text, want)
	}
	frames := regexp.MustCompile(`\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] [a-z]`).FindAllString(text, -1)
	assert.Greater(t, len(frames), 3, "the status line is redrawn with the spinner:\n%q", text)
	assert.Contains(t, text, "running bash", "the status line says what runs")
}

// Piped, the same run is plain lines: no spinner, no redrawing.
func TestCLIPlainWhenPiped(t *testing.T) {
	code, out, errOut := newCLI(t).run("run", "probe.triage", `{"turns":2,"sleep_ms":120}`)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "▸ bash {\"command\":\"grep -rn bug1 .\"}\n")
	assert.Contains(t, errOut, "  $ grep -rn bug1 .\n")
	assert.NotContains(t, errOut, "\r")
	assert.NotContains(t, errOut, "\x1b[")
	assert.NotRegexp(t, `[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]`, errOut)
	assert.Contains(t, out, `"tools": 2`)
}

// A policy denial is shown for what it is.
func TestCLIShowsPolicyDenials(t *testing.T) {
	code, _, errOut := newCLI(t).run("run", "probe.policy", `{"method":"GET","url":"https://evil.example/x"}`)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, "✗ policy denied GET https://evil.example/x (service none, no-service")
}

// serveChild is damper serve on a fixed port (it keeps it across a
// restart) over a data directory.
type serveChild struct {
	t    *testing.T
	cli  *cli
	addr string
	cmd  *exec.Cmd
	log  *bytes.Buffer
}

func startServe(t *testing.T, c *cli) *serveChild {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	s := &serveChild{t: t, cli: c, addr: addr}
	s.start()
	t.Cleanup(func() { s.stop(syscall.SIGTERM) })
	return s
}

func (s *serveChild) url() string { return "http://" + s.addr }

func (s *serveChild) start() {
	s.t.Helper()
	s.cmd = s.cli.command("serve", "--addr", s.addr, "--module", testmodule.Path(s.t), "--data", s.cli.data)
	s.log = &bytes.Buffer{}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	require.NoError(s.t, s.cmd.Start())
	require.Eventually(s.t, func() bool {
		resp, err := http.Get(s.url() + "/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}, time.Minute, 20*time.Millisecond, "damper serve did not start")
}

func (s *serveChild) stop(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Wait()
	s.cmd = nil
}

func (s *serveChild) background(agent, id, payload string) string {
	s.t.Helper()
	resp, err := http.Post(s.url()+"/agents/"+agent+"/"+id+"?background=1", "application/json", strings.NewReader(payload))
	require.NoError(s.t, err)
	defer resp.Body.Close()
	require.Equal(s.t, http.StatusAccepted, resp.StatusCode)
	var v struct{ Run string }
	require.NoError(s.t, json.NewDecoder(resp.Body).Decode(&v))
	return v.Run
}

// damper events and damper runs read an instance of damper serve.
func TestCLIEventsAndRuns(t *testing.T) {
	c := newCLI(t)
	srv := startServe(t, c)
	run := srv.background("probe.triage", "x", `{"turns":2,"sleep_ms":30}`)

	code, out, errOut := c.run("events", "probe.triage/x", "--run", run, "--follow", "--json", "--url", srv.url())
	require.Equal(t, 0, code, errOut)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var types []event.Type
	for _, l := range lines {
		var e event.Envelope
		require.NoError(t, json.Unmarshal([]byte(l), &e))
		types = append(types, e.Type)
	}
	assert.Equal(t, agents.TriageTypes(2, false), types, "followed to the run's end")

	code, out, errOut = c.run("events", "probe.triage/x", "--url", srv.url())
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "▸ bash {\"command\":\"grep -rn bug2 .\"}")
	assert.Contains(t, out, "✓ done in")

	code, out, errOut = c.run("runs", "probe.triage/x", "--url", srv.url())
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, regexp.MustCompile(run+`\s+done\s+background`), out)
	assert.Contains(t, out, "$0.0075")

	code, out, _ = c.run("runs", "probe.triage/x", "--url", srv.url(), "--json")
	require.Equal(t, 0, code)
	var list struct{ Runs []local.Run }
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list.Runs, 1)
	assert.Equal(t, run, list.Runs[0].ID)

	code, _, errOut = c.run("events", "probe.triage/x", "--run", "r_nope", "--url", srv.url())
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "not_found")
}

// damper events --follow reconnects after the connection drops (here
// damper serve is killed and started again, and the run resumes): every
// event once, in order, to the run's end.
func TestCLIEventsReconnect(t *testing.T) {
	c := newCLI(t)
	srv := startServe(t, c)
	run := srv.background("probe.steps", "r", `{"steps":5,"sleep_ms":300}`)
	follow := c.command("events", "probe.steps/r", "--run", run, "--follow", "--json", "--url", srv.url())
	stdout, err := follow.StdoutPipe()
	require.NoError(t, err)
	var errb bytes.Buffer
	follow.Stderr = &errb
	require.NoError(t, follow.Start())
	sc := bufio.NewScanner(stdout)
	var evs []event.Envelope
	logs := 0
	for logs < 2 && sc.Scan() {
		var e event.Envelope
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		evs = append(evs, e)
		if e.Type == event.TypeLog {
			logs++
		}
	}
	srv.stop(syscall.SIGKILL)
	srv.start()
	for sc.Scan() {
		var e event.Envelope
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e))
		evs = append(evs, e)
	}
	require.NoError(t, follow.Wait(), "%s", errb.String())
	assert.Contains(t, errb.String(), "reconnecting after event")
	for i := 1; i < len(evs); i++ {
		assert.Equal(t, evs[i-1].Seq+1, evs[i].Seq, "each event once, in order")
	}
	var starts int
	for _, e := range evs {
		if e.Type == event.TypeRunStart {
			starts++
		}
	}
	assert.Equal(t, 2, starts, "the run started again after the restart")
	assert.Equal(t, event.TypeRunFinish, evs[len(evs)-1].Type)
}

// Spans reach the collector before damper run exits.
func TestCLIExportsSpansBeforeExit(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var export struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []struct{ Name string } `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		_ = json.NewDecoder(r.Body).Decode(&export)
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range export.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
	}))
	defer recv.Close()
	c := newCLI(t)
	c.env = []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + recv.URL + "/v1/traces"}
	code, _, errOut := c.run("run", "probe.otel")
	require.Equal(t, 0, code, errOut)
	mu.Lock()
	defer mu.Unlock()
	assert.Contains(t, names, "invoke_agent probe.otel")
	assert.Len(t, names, 7, "every span of the run")
}
