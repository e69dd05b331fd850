package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
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
	fs := newFlagSet("serve", "[flags] [--watch [package]]", stderr)
	addr := fs.String("addr", "127.0.0.1:8787", "`address` to listen on (port 0 picks a free one)")
	module := fs.String("module", defaultModule, "the module to serve")
	data := fs.String("data", ".damper/data", "`directory` of the agent instances' SQLite databases")
	tokenFile := fs.String("token-file", "", "`file` holding the bearer token (default: $DAMPER_TOKEN)")
	idle := fs.Duration("idle", local.DefaultIdleTimeout, "drop an agent instance's module instance after this long without runs")
	timeout := fs.Duration("run-timeout", envTimeout, "cancel a run after this long, answering 504 (0: no limit; default $DAMPER_RUN_TIMEOUT, else 5m)")
	verbose := fs.Bool("v", false, "log at debug level")
	watch := fs.Bool("watch", false, "build `package` (default: the one in this directory) into --module first, and again whenever a .go file of its Go module changes; runs in flight finish on the old module")
	targets := targetFlag(fs)
	pos, rest, err := parseArgs(fs, args)
	if err != nil {
		return parseError(err)
	}
	pos = append(pos, rest...)
	if len(pos) > 1 || len(pos) == 1 && !*watch {
		fs.Usage()
		return 2
	}
	pkg := "."
	if len(pos) == 1 {
		pkg = pos[0]
	}
	overrides, err := targets()
	if err != nil {
		fmt.Fprintf(stderr, "damper serve: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := serveOptions{addr: *addr, module: *module, data: *data, tokenFile: *tokenFile, idle: *idle, runTimeout: *timeout, verbose: *verbose, targets: overrides}
	if *watch {
		opts.watch = pkg
	}
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
	watch                         string            // the package to build and rebuild on changes; "" for none
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
	cfg := local.NewConfig().
		WithDataDir(o.data).
		WithLogger(logger).
		WithToken(token).
		WithIdleTimeout(o.idle).
		WithRunTimeout(o.runTimeout).
		WithTargets(o.targets).
		WithModel(os.Getenv("DAMPER_MODEL")).
		WithSandbox(os.Getenv("DAMPER_SANDBOX"))
	if cfg, err = eventEnv(cfg); err != nil {
		return err
	}
	if cfg, err = withSandboxes(cfg); err != nil {
		return err
	}
	var w *watcher
	if o.watch != "" {
		if w, err = newWatcher(ctx, o.watch, filepath.Dir(o.module)); err != nil {
			return err
		}
		mod, err := compileModule(ctx, o.watch)
		if err == nil {
			err = mod.write(o.module)
		}
		if err != nil {
			return err
		}
	}
	host, err := openHost(ctx, o.module, cfg)
	if err != nil {
		return err
	}
	warnMissingSecrets(stderr, "serve", host.Manifest(), envSet, func(n string) string {
		return "set it in the environment of damper serve, e.g. " + n + "=... damper serve"
	})
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		host.Close(context.Background())
		return err
	}
	resume(ctx, logger, host)
	hosts := &swapHandler{cur: newGeneration(host)}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		hosts.close(closeCtx)
	}()
	srv := newServer(accessLog(logger, hosts))
	if w != nil {
		go w.run(ctx, func(changed []string) {
			began := time.Now()
			logger.Info("rebuilding", "changed", strings.Join(changed, ","))
			mod, err := compileModule(ctx, o.watch)
			if err == nil {
				err = mod.write(o.module)
			}
			var next *local.Host
			if err == nil {
				next, err = openHost(ctx, o.module, cfg)
			}
			if err != nil {
				if ctx.Err() == nil {
					logger.Error("rebuild failed; serving the previous module", "err", err)
				}
				return
			}
			hosts.swap(newGeneration(next))
			// The old host interrupted its runs when it closed: they go on here.
			resume(ctx, logger, next)
			logger.Info("rebuilt; serving the new module", "module", o.module, "agents", strings.Join(mod.agents(), ","), "took", time.Since(began).Round(time.Millisecond))
		})
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
	if cerr := hosts.close(shutdownCtx); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// resume starts again the runs the data directory's ledgers hold
// unfinished: those of a damper serve that was killed or stopped.
func resume(ctx context.Context, logger *slog.Logger, h *local.Host) {
	n, err := h.Resume(ctx)
	if err != nil {
		logger.Error("resuming interrupted runs", "err", err)
	}
	if n > 0 {
		logger.Info("resuming interrupted runs", "runs", n)
	}
}

// Limits of the HTTP server: a client, authenticated or not, can hold a
// connection only as long as these allow. The response of a run is written
// under its own deadline (local's handler), so a run may take as long as
// its timeout allows and a slow reader is still cut off.
var (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 60 * time.Second // the header and a body of up to 1 MiB
	idleTimeout       = 120 * time.Second
)

const maxHeaderBytes = 64 << 10

func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
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

// swapHandler serves the HTTP API of the current host, and lets `serve
// --watch` replace the host with one for a rebuilt module. Runs of one
// agent instance never overlap, even across a swap: the new host takes
// requests only once the old one has answered those it had (or a grace
// period ended), so both never run the same instance at once.
type swapHandler struct {
	mu     sync.RWMutex
	cur    *generation
	closed bool
}

// generation is one host and the requests it is serving.
type generation struct {
	host     *local.Host
	handler  http.Handler
	inflight sync.WaitGroup
}

func newGeneration(h *local.Host) *generation {
	return &generation{host: h, handler: h.Handler()}
}

// swapGrace is how long a swap waits for the old host's runs; those still
// running then are canceled.
const swapGrace = 10 * time.Second

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	g := s.cur
	g.inflight.Add(1)
	s.mu.RUnlock()
	defer g.inflight.Done()
	g.handler.ServeHTTP(w, r)
}

// swap makes next the current host and closes the old one.
func (s *swapHandler) swap(next *generation) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		next.host.Close(context.Background())
		return
	}
	old := s.cur
	waitTimeout(&old.inflight, swapGrace)
	s.cur = next
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), swapGrace)
	defer cancel()
	old.host.Close(ctx)
}

// close closes the current host; later swaps close theirs at once.
func (s *swapHandler) close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.cur.host.Close(ctx)
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// accessLog logs one line per request once it is answered: method, path,
// status, duration and the request id the host answered with, as wrangler
// dev does for the Worker.
func accessLog(logger *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		logger.Info("request", "method", r.Method, "path", r.URL.EscapedPath(), "status", rec.status,
			"duration", time.Since(began).Round(time.Microsecond), "request_id", w.Header().Get("X-Request-Id"))
	})
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
