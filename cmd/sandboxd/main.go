// Command sandboxd serves a sandbox's files and shell over HTTP (package
// sandbox/sandboxd): the process inside the container kind's container,
// and the child process the local host starts per agent instance.
//
//	sandboxd [--root DIR] [--listen ADDR] [--bridge LISTEN=unix:PATH]... [--loopback]
//
// --root is the working directory (default /workspace, created if
// missing); --listen is host:port (default :8080, the port the Workers
// host reaches) or unix:PATH. Commands get sandboxd's own environment,
// without its SANDBOXD_* settings: whoever starts it decides what they
// see, and it must hold no secret.
//
// --bridge forwards every TCP connection to LISTEN (inside sandboxd's
// network namespace) to a unix socket outside it; the local host uses it
// to give a child with no network of its own one way out, its egress
// proxy. --loopback brings up the loopback interface of a new network
// namespace first (Linux).
package main

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
	"strings"
	"syscall"
	"time"

	"github.com/damperdev/damper/internal/ossandbox"
	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/sandboxd"
)

type bridges []string

func (b *bridges) String() string     { return strings.Join(*b, ",") }
func (b *bridges) Set(s string) error { *b = append(*b, s); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("sandboxd", flag.ContinueOnError)
	root := fl.String("root", envOr("SANDBOXD_ROOT", "/workspace"), "the working directory")
	listen := fl.String("listen", envOr("SANDBOXD_LISTEN", ":8080"), "host:port or unix:PATH")
	loopback := fl.Bool("loopback", false, "bring up the loopback interface first (a new network namespace)")
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
	sb, err := ossandbox.New(ossandbox.Config{Dir: *root, Kind: sandbox.KindContainer, Env: env})
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
	srv := &http.Server{Handler: sandboxd.Handler(sb), ReadHeaderTimeout: 10 * time.Second}
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
