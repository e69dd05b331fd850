package sandboxd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/damperdev/damper/internal/ossandbox"
	"github.com/damperdev/damper/sandbox"
)

type bridges []string

func (b *bridges) String() string     { return strings.Join(*b, ",") }
func (b *bridges) Set(s string) error { *b = append(*b, s); return nil }

// Main is sandboxd's command line (see cmd/sandboxd): it serves until
// SIGTERM or an interrupt. The damper CLI runs it as `damper sandboxd`
// for the local host's containers, the image as /usr/local/bin/sandboxd.
func Main(args []string) error {
	fl := flag.NewFlagSet("sandboxd", flag.ContinueOnError)
	root := fl.String("root", envOr("SANDBOXD_ROOT", "/workspace"), "the working directory")
	listen := fl.String("listen", envOr("SANDBOXD_LISTEN", ":8080"), "host:port or unix:PATH")
	loopback := fl.Bool("loopback", false, "bring up the loopback interface first (a new network namespace)")
	user := fl.Int("user", -1, "once listening, run as this user and group id (sandboxd started as root)")
	var br bridges
	fl.Var(&br, "bridge", "LISTEN=unix:PATH: forward TCP connections to LISTEN to a unix socket (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	if *loopback {
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("bring up loopback: %w", err)
		}
	}
	if err := os.MkdirAll(*root, 0o755); err != nil {
		return err
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SANDBOXD_") {
			env = append(env, kv)
		}
	}
	// Commands start in the working directory by a relative path, from
	// here: a user dropped to below needs no way through its parents.
	if err := os.Chdir(*root); err != nil {
		return err
	}
	// sandboxd is only a sandbox: it reaps what outlives a command.
	sb, err := ossandbox.New(ossandbox.Config{Dir: *root, Kind: sandbox.KindContainer, Env: env, Relative: true, Strays: runtime.GOOS == "linux"})
	if err != nil {
		return err
	}
	defer sb.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	for _, b := range br {
		from, to, ok := strings.Cut(b, "=")
		if !ok || !strings.HasPrefix(to, "unix:") {
			return fmt.Errorf("--bridge %q: want LISTEN=unix:PATH", b)
		}
		l, err := net.Listen("tcp", from)
		if err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
		go bridge(l, strings.TrimPrefix(to, "unix:"), log)
	}

	l, err := listenOn(*listen)
	if err != nil {
		return err
	}
	if *user >= 0 {
		if err := dropTo(*user); err != nil {
			return fmt.Errorf("run as user %d: %w", *user, err)
		}
	}
	srv := &http.Server{Handler: Handler(sb), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("sandboxd serving", "root", sb.Dir(), "listen", *listen)
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func listenOn(addr string) (net.Listener, error) {
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		os.Remove(path)
		l, err := net.Listen("unix", path)
		if err != nil {
			return nil, err
		}
		// Only its owner (the host that started it) talks to sandboxd.
		return l, os.Chmod(path, 0o600)
	}
	return net.Listen("tcp", addr)
}

// bridge copies each connection accepted on l to a new connection to the
// unix socket at path, both ways.
func bridge(l net.Listener, path string, log *slog.Logger) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			u, err := net.Dial("unix", path)
			if err != nil {
				log.Warn("bridge", "to", path, "err", err)
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(u, c); u.(*net.UnixConn).CloseWrite(); done <- struct{}{} }()
			go func() { io.Copy(c, u); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
			<-done
			<-done
		}()
	}
}

// dropTo makes every thread of the process run as uid (and gid uid),
// with no supplementary groups.
func dropTo(uid int) error {
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(uid); err != nil {
		return err
	}
	return syscall.Setuid(uid)
}
