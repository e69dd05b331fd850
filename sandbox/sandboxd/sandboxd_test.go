package sandboxd_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/ossandbox"
	"github.com/damperdev/damper/internal/sandboxop"
	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/sandboxd"
	"github.com/damperdev/damper/sandbox/sandboxtest"
)

func serve(t testing.TB) *sandboxd.Client {
	sb, err := ossandbox.New(ossandbox.Config{Dir: t.TempDir(), Kind: sandbox.KindContainer, Env: []string{"PATH=" + os.Getenv("PATH")}})
	require.NoError(t, err)
	srv := httptest.NewServer(sandboxd.Handler(sb))
	t.Cleanup(func() { srv.Close(); sb.Close() })
	c, err := sandboxd.Dial(context.Background(), srv.URL, srv.Client(), sandbox.KindContainer)
	require.NoError(t, err)
	return c
}

// The conformance suite through sandboxd's HTTP protocol on loopback.
func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox { return serve(t) },
		sandboxtest.Features{Streams: true, Permissions: os.Geteuid() != 0})
}

// buildSandboxd builds cmd/sandboxd once for the tests that run it.
func buildSandboxd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sandboxd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/damperdev/damper/cmd/sandboxd").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
}

func startProcess(t *testing.T, bin, root, sock string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "--root", root, "--listen", "unix:"+sock)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The socket's file exists from bind, before listen: wait for a
	// connection to be accepted, not for the file.
	require.Eventually(t, func() bool {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}, 10*time.Second, 10*time.Millisecond)
	return cmd
}

// The real binary, on a unix socket, passes the suite; killed in the
// middle of an exec, the call fails with ErrLost, and a new sandboxd on
// the same root has the files.
func TestProcess(t *testing.T) {
	bin := buildSandboxd(t)
	t.Run("conformance", func(t *testing.T) {
		sandboxtest.Run(t, func(t *testing.T) sandbox.Sandbox {
			dir := t.TempDir()
			sock := filepath.Join(dir, "s.sock")
			require.NoError(t, os.Mkdir(filepath.Join(dir, "ws"), 0o755))
			startProcess(t, bin, filepath.Join(dir, "ws"), sock)
			c, err := sandboxd.Dial(t.Context(), "http://sandboxd", unixClient(sock), sandbox.KindContainer)
			require.NoError(t, err)
			return c
		}, sandboxtest.Features{Streams: true, Permissions: os.Geteuid() != 0})
	})

	t.Run("killed_mid_exec", func(t *testing.T) {
		dir := t.TempDir()
		sock := filepath.Join(dir, "s.sock")
		root := filepath.Join(dir, "ws")
		proc := startProcess(t, bin, root, sock)
		c, err := sandboxd.Dial(t.Context(), "http://sandboxd", unixClient(sock), sandbox.KindContainer)
		require.NoError(t, err)
		require.NoError(t, c.WriteFile(t.Context(), "kept.txt", []byte("stored")))

		var out strings.Builder
		started := make(chan struct{})
		w := writerFunc(func(p []byte) (int, error) {
			if out.Len() == 0 {
				close(started)
			}
			out.Write(p)
			return len(p), nil
		})
		errc := make(chan error, 1)
		go func() {
			_, err := c.Exec(context.Background(), sandbox.Cmd{Script: "echo working; sleep 60", Stdout: w})
			errc <- err
		}()
		<-started
		require.NoError(t, proc.Process.Kill())
		err = <-errc
		require.ErrorIs(t, err, sandboxd.ErrLost)
		assert.Equal(t, "working\n", out.String(), "output streamed before the kill arrived")

		os.Remove(sock)
		startProcess(t, bin, root, sock)
		c, err = sandboxd.Dial(t.Context(), "http://sandboxd", unixClient(sock), sandbox.KindContainer)
		require.NoError(t, err)
		b, err := c.ReadFile(t.Context(), "kept.txt")
		require.NoError(t, err)
		assert.Equal(t, "stored", string(b), "the root persists across sandboxd's restart")
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Bad requests get a precise status, never a sandbox Response.
func TestBadRequests(t *testing.T) {
	sb, err := ossandbox.New(ossandbox.Config{Dir: t.TempDir(), Kind: sandbox.KindContainer})
	require.NoError(t, err)
	defer sb.Close()
	srv := httptest.NewServer(sandboxd.Handler(sb))
	defer srv.Close()
	for _, tt := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/op", "{", http.StatusBadRequest},
		{"POST", "/exec", "[]", http.StatusBadRequest},
		{"GET", "/op", "", http.StatusMethodNotAllowed},
		{"POST", "/nope", "{}", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tt.status, resp.StatusCode, "%s %s %s", tt.method, tt.path, tt.body)
	}
	c, err := sandboxd.Dial(t.Context(), srv.URL, nil, sandbox.KindContainer)
	require.NoError(t, err)
	r, err := c.Do(t.Context(), sandboxop.Request{Op: "format_disk"})
	require.NoError(t, err)
	require.NotNil(t, r.Error)
	assert.Equal(t, "invalid", r.Error.Code)
}

// BenchmarkExecRoundTrip is one exec of a trivial command through
// sandboxd on loopback: the HTTP exchange, the stream and the process.
func BenchmarkExecRoundTrip(b *testing.B) {
	c := serve(b)
	for b.Loop() {
		if _, err := c.Exec(b.Context(), sandbox.Cmd{Script: "true"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpRoundTrip is one file operation through sandboxd on
// loopback.
func BenchmarkOpRoundTrip(b *testing.B) {
	c := serve(b)
	if err := c.WriteFile(b.Context(), "f", []byte("x")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.ReadFile(b.Context(), "f"); err != nil {
			b.Fatal(err)
		}
	}
}
