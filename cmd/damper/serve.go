package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/damperdev/damper/local"
)

// defaultRunTimeout is how long `damper serve` lets a run go before it
// cancels it, as the Worker does (worker/runner.js DEFAULT_RUN_TIMEOUT_MS);
// DAMPER_RUN_TIMEOUT sets both.
const defaultRunTimeout = 5 * time.Minute

// runTimeoutEnv reads DAMPER_RUN_TIMEOUT, a Go duration ("0": no limit);
// unset or empty is defaultRunTimeout.
func runTimeoutEnv() (time.Duration, error) {
	v := os.Getenv("DAMPER_RUN_TIMEOUT")
	if v == "" {
		return defaultRunTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = fmt.Errorf("%s is negative", v)
	}
	if err != nil {
		return 0, fmt.Errorf("DAMPER_RUN_TIMEOUT: %w", err)
	}
	return d, nil
}

func serveCmd(args []string, stderr io.Writer) int {
	envTimeout, err := runTimeoutEnv()
	if err != nil {
		fmt.Fprintf(stderr, "damper serve: %v\n", err)
		return 2
	}
	fs := newFlagSet("serve", "[flags]", stderr)
	addr := fs.String("addr", "127.0.0.1:8787", "`address` to listen on (port 0 picks a free one)")
	module := fs.String("module", defaultModule, "the module to serve")
	data := fs.String("data", ".damper/data", "`directory` of the agent instances' SQLite databases")
	tokenFile := fs.String("token-file", "", "`file` holding the bearer token (default: $DAMPER_TOKEN)")
	idle := fs.Duration("idle", local.DefaultIdleTimeout, "drop an agent instance's module instance after this long without runs")
	timeout := fs.Duration("run-timeout", envTimeout, "cancel a run after this long, answering 504 (0: no limit; default $DAMPER_RUN_TIMEOUT, else 5m)")
	verbose := fs.Bool("v", false, "log at debug level")
	targets := targetFlag(fs)
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	overrides, err := targets()
	if err != nil {
		fmt.Fprintf(stderr, "damper serve: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := serveOptions{addr: *addr, module: *module, data: *data, tokenFile: *tokenFile, idle: *idle, runTimeout: *timeout, verbose: *verbose, targets: overrides}
	if err := serve(ctx, opts, stderr); err != nil {
		fmt.Fprintf(stderr, "damper serve: %v\n", err)
		return 1
	}
	return 0
}

type serveOptions struct {
	addr, module, data, tokenFile string
	idle, runTimeout              time.Duration
	verbose                       bool
	targets                       map[string]string // service overrides
}

// serve serves the HTTP API until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, o serveOptions, stderr io.Writer) error {
	token, err := readToken(o.tokenFile)
	if err != nil {
		return err
	}
	if token == "" && !loopback(o.addr) {
		return fmt.Errorf("refusing to listen on %s without a token: set DAMPER_TOKEN or --token-file, or listen on a loopback address", o.addr)
	}
	logger := newLogger(stderr, o.verbose)
	host, err := openHost(ctx, o.module, local.NewConfig().
		WithDataDir(o.data).
		WithLogger(logger).
		WithToken(token).
		WithIdleTimeout(o.idle).
		WithRunTimeout(o.runTimeout).
		WithTargets(o.targets))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		host.Close(context.Background())
		return err
	}
	srv := &http.Server{
		Handler:           host.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	auth := "no token"
	if token != "" {
		auth = "bearer token required"
	}
	// A plain line, not a log record: scripts and the e2e suite parse it.
	fmt.Fprintf(stderr, "damper: listening on http://%s (module %s, data %s, %s)\n", ln.Addr(), o.module, o.data, auth)

	select {
	case err = <-errc:
	case <-ctx.Done():
		logger.Info("shutting down")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Stop accepting, let runs in flight finish (or time out), then cancel
	// what is left and drop every module instance.
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = serr
	}
	if cerr := host.Close(shutdownCtx); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// readToken returns the bearer token from file, or from $DAMPER_TOKEN.
func readToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv("DAMPER_TOKEN")), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return token, nil
}

// loopback reports whether addr listens on loopback only. An empty host
// (":8787") listens on every interface, so it is not loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
