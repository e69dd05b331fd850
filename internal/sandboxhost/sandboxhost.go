// Package sandboxhost is the local host's side of the sandbox kinds that
// are not inside the module: it performs the "sandbox" effect (the local
// kind: the host's own directory and shell) and the "container" effect
// (the container kind: a sandboxd child process per agent instance, with
// an egress proxy that hands every request of the child to the agent's
// policy).
//
// A child runs in its own directory under the data directory, started at
// its instance's first operation, put to sleep (stopped, its files kept)
// after an idle time and woken by the next operation; killed, it is
// started again for the next one. On Linux, where the host may create
// network namespaces, it runs in one of its own whose only way out is the
// egress proxy (a unix socket bridged to the namespace's loopback), so a
// command that ignores HTTP_PROXY has no network at all.
package sandboxhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/damperdev/damper/internal/host"
	"github.com/damperdev/damper/internal/ossandbox"
	"github.com/damperdev/damper/internal/sandboxop"
	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/sandbox"
	"github.com/damperdev/damper/sandbox/sandboxd"
)

// Effect types this package performs (sandbox/internal/remote issues them).
const (
	EffectLocal     = "sandbox"
	EffectContainer = "container"
)

// ErrSandbox is the effect error type of a sandbox that failed (rather
// than an operation it refused): sandboxd went away, or could not start.
const ErrSandbox = "sandbox_error"

// DefaultIdle is how long a child sandboxd outlives its last operation
// before it is put to sleep; its files stay.
const DefaultIdle = 10 * time.Minute

// Config configures a Host.
type Config struct {
	// LocalDir is the local kind's working directory (damper run's
	// directory); "" offers no local kind.
	LocalDir string
	// LocalEnv are the names of host environment variables the local
	// kind's commands get, besides ossandbox.AllowedEnv.
	LocalEnv []string
	// Sandboxd is the command line that runs sandboxd (its flags are
	// appended); nil offers no container kind.
	Sandboxd []string
	// ContainerDir returns the directory of an agent instance's
	// container: its files are in ContainerDir/workspace.
	ContainerDir func(agent, id string) string
	// Egress decides and sends the requests of a container; nil denies
	// them all.
	Egress Egress
	// Idle is how long a child outlives its last operation; zero is
	// DefaultIdle.
	Idle time.Duration
	// Isolate says whether a child gets a network namespace of its own:
	// "auto" (the default) when the host may create one, "off", or
	// "require" (a child that cannot have one does not start).
	Isolate string
	// Logger receives the children's output and the host's notes.
	Logger *slog.Logger
}

// Host performs the sandbox effects of one local host. It is safe for
// concurrent use.
type Host struct {
	cfg   Config
	ca    *authority
	local *ossandbox.Sandbox
	log   *slog.Logger

	mu       sync.Mutex
	children map[string]*child
	closed   bool
}

// New returns a Host for cfg.
func New(cfg Config) (*Host, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	switch cfg.Isolate {
	case "":
		cfg.Isolate = "auto"
	case "auto", "off", "require":
	default:
		return nil, fmt.Errorf("sandbox isolation %q: want auto, off or require", cfg.Isolate)
	}
	h := &Host{cfg: cfg, log: cfg.Logger, children: map[string]*child{}}
	if cfg.LocalDir != "" {
		env := ossandbox.EnvFrom(append(append([]string(nil), ossandbox.AllowedEnv...), cfg.LocalEnv...), os.LookupEnv)
		sb, err := ossandbox.New(ossandbox.Config{Dir: cfg.LocalDir, Kind: sandbox.KindLocal, Env: env})
		if err != nil {
			return nil, fmt.Errorf("local sandbox: %w", err)
		}
		h.local = sb
	}
	if cfg.Sandboxd != nil {
		ca, err := newAuthority()
		if err != nil {
			return nil, err
		}
		h.ca = ca
	}
	return h, nil
}

// Performers returns the effects the host performs, for host.Options.Perform.
func (h *Host) Performers() map[string]host.Performer {
	p := map[string]host.Performer{}
	if h.local != nil {
		p[EffectLocal] = h.performLocal
	}
	if h.cfg.Sandboxd != nil {
		p[EffectContainer] = h.performContainer
	}
	return p
}

func decodeRequest(typ string, args []byte) (sandboxop.Request, *wire.Error) {
	var req sandboxop.Request
	return req, host.DecodeArgs(typ, args, &req)
}

func (h *Host) performLocal(ctx context.Context, _ *host.Core, t *host.Task, args []byte) (any, *wire.Error) {
	req, werr := decodeRequest(EffectLocal, args)
	if werr != nil {
		return nil, werr
	}
	if req.Op == sandboxop.OpExec && req.Stream && req.Cmd != nil {
		return sandboxop.Response{Handle: t.AddStream(streamExec(ctx, h.local, *req.Cmd))}, nil
	}
	return sandboxop.Serve(ctx, h.local, req), nil
}

// streamExec runs cmd on sb and returns its Frames as a stream: the
// output as the command prints it, then the End. Closing the stream (the
// guest's close effect, the task's end) stops the command.
func streamExec(ctx context.Context, sb *ossandbox.Sandbox, cmd sandboxop.Cmd) io.ReadCloser {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		fw := sandboxop.NewFrameWriter(writerFunc(func(p []byte) (int, error) {
			n, err := pw.Write(p)
			if err != nil {
				cancel() // nobody reads: stop the command
			}
			return n, err
		}), nil)
		resp := sandboxop.ServeExec(ctx, sb, cmd, fw.Output(false), fw.Output(true))
		fw.Frame(sandboxop.Frame{End: &resp})
		pw.Close()
	}()
	return pr
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// idleOnClose is a child's exec stream: the child stays busy (no idle
// sleep) until the stream is closed.
type idleOnClose struct {
	io.ReadCloser
	once sync.Once
	c    *child
}

func (b *idleOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.c.idle)
	return err
}

func (h *Host) performContainer(ctx context.Context, _ *host.Core, t *host.Task, args []byte) (any, *wire.Error) {
	req, werr := decodeRequest(EffectContainer, args)
	if werr != nil {
		return nil, werr
	}
	for attempt := 0; ; attempt++ {
		c, err := h.child(ctx, t.Inst.Agent, t.Inst.ID)
		if err != nil {
			return nil, &wire.Error{Type: ErrSandbox, Message: err.Error()}
		}
		resp, err := h.perform(ctx, c, t, req)
		if err != nil && attempt == 0 && unsent(err) {
			// The child died before the request reached it (its exit not
			// yet seen): nothing happened, so a new child takes it.
			c.stop()
			continue
		}
		if err != nil {
			return nil, h.lost(ctx, c, req, err)
		}
		return resp, nil
	}
}

// perform sends req to the child c; a streamed exec's stream keeps c
// busy until it is closed.
func (h *Host) perform(ctx context.Context, c *child, t *host.Task, req sandboxop.Request) (sandboxop.Response, error) {
	if req.Op == sandboxop.OpExec && req.Stream && req.Cmd != nil {
		body, err := c.client.ExecStream(ctx, *req.Cmd)
		if err != nil {
			c.idle()
			return sandboxop.Response{}, err
		}
		return sandboxop.Response{Handle: t.AddStream(&idleOnClose{ReadCloser: body, c: c})}, nil
	}
	defer c.idle()
	if req.Op == sandboxop.OpExec && req.Cmd != nil {
		return c.client.ExecFrames(ctx, *req.Cmd, nil)
	}
	return c.client.Do(ctx, req)
}

// unsent reports whether err is a connection to sandboxd that failed
// before anything was sent.
func unsent(err error) bool {
	var op *net.OpError
	return errors.Is(err, sandboxd.ErrLost) && errors.As(err, &op) && op.Op == "dial"
}

// lost is the error of an operation whose sandboxd failed it.
func (h *Host) lost(ctx context.Context, c *child, req sandboxop.Request, err error) *wire.Error {
	if ctx.Err() != nil {
		return host.CanceledError(ctx)
	}
	if errors.Is(err, sandboxd.ErrLost) {
		c.stop()
		return &wire.Error{Type: ErrSandbox, Message: fmt.Sprintf("the container's sandboxd went away during %s (killed or crashed): %v; it is started again for the next operation, with its files", req.Op, err)}
	}
	return &wire.Error{Type: ErrSandbox, Message: err.Error()}
}

// Destroy stops the container of agent instance (agent, id) and removes
// its files: the DELETE of the agent instance calls it.
func (h *Host) Destroy(ctx context.Context, agent, id string) error {
	h.mu.Lock()
	c := h.children[agent+"/"+id]
	delete(h.children, agent+"/"+id)
	h.mu.Unlock()
	if c != nil {
		c.stop()
	}
	if h.cfg.ContainerDir == nil {
		return nil
	}
	if err := os.RemoveAll(h.cfg.ContainerDir(agent, id)); err != nil {
		return fmt.Errorf("destroy the container of %s/%s: %w", agent, id, err)
	}
	return nil
}

// Close stops every child; their files stay.
func (h *Host) Close() error {
	h.mu.Lock()
	h.closed = true
	children := h.children
	h.children = map[string]*child{}
	h.mu.Unlock()
	for _, c := range children {
		c.stop()
	}
	if h.local != nil {
		return h.local.Close()
	}
	return nil
}

// Sleep puts the child of (agent, id) to sleep now, as its idle time
// would: its process ends, its files stay, and the next operation wakes
// it. It reports whether there was one awake.
func (h *Host) Sleep(agent, id string) bool {
	h.mu.Lock()
	c := h.children[agent+"/"+id]
	h.mu.Unlock()
	if c == nil || !c.started() || c.isDead() {
		return false
	}
	c.stop()
	return true
}

// Pid is the process id of the running child of (agent, id), or 0.
func (h *Host) Pid(agent, id string) int {
	h.mu.Lock()
	c := h.children[agent+"/"+id]
	h.mu.Unlock()
	if c == nil || !c.started() || c.isDead() {
		return 0
	}
	return c.cmd.Process.Pid
}

// Isolated reports whether the running child of (agent, id) has a
// network namespace of its own.
func (h *Host) Isolated(agent, id string) bool {
	h.mu.Lock()
	c := h.children[agent+"/"+id]
	h.mu.Unlock()
	return c != nil && c.started() && c.isolated
}

// child returns the running child of (agent, id), starting one when there
// is none or the last one died.
func (h *Host) child(ctx context.Context, agent, id string) (*child, error) {
	key := agent + "/" + id
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("the host is shutting down")
	}
	c := h.children[key]
	if c == nil || c.isDead() {
		c = &child{h: h, agent: agent, id: id, ready: make(chan struct{})}
		h.children[key] = c
		h.mu.Unlock()
		c.err = c.start(ctx)
		close(c.ready)
		if c.err != nil {
			h.mu.Lock()
			if h.children[key] == c {
				delete(h.children, key)
			}
			h.mu.Unlock()
			return nil, c.err
		}
		return c.busy(), nil
	}
	h.mu.Unlock()
	select {
	case <-c.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.err != nil {
		return nil, c.err
	}
	return c.busy(), nil
}

// child is one sandboxd process of an agent instance, and its egress
// proxy.
type child struct {
	h         *Host
	agent, id string
	ready     chan struct{} // closed once started (or failed: err)
	err       error

	cmd      *exec.Cmd
	exited   chan struct{}
	sockDir  string
	client   *sandboxd.Client
	proxy    *proxy
	isolated bool

	mu    sync.Mutex
	ops   int // operations in flight
	timer *time.Timer
}

// started reports whether the child's start is over (whether or not it
// succeeded).
func (c *child) started() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

func (c *child) isDead() bool {
	select {
	case <-c.ready:
	default:
		return false
	}
	if c.err != nil {
		return true
	}
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

func (c *child) busy() *child {
	c.mu.Lock()
	c.ops++
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	return c
}

// idle ends an operation; the last one starts the idle timer.
func (c *child) idle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ops--
	if c.ops == 0 {
		c.timer = time.AfterFunc(c.h.cfg.Idle, func() {
			c.mu.Lock()
			busy := c.ops > 0
			c.mu.Unlock()
			if !busy {
				c.h.log.Debug("container idle: put to sleep", "agent", c.agent, "id", c.id)
				c.stop()
			}
		})
	}
}

// proxyPort is where a namespaced child's commands find the egress proxy.
const proxyPort = "127.0.0.1:3128"

func (c *child) start(ctx context.Context) error {
	h := c.h
	if h.cfg.ContainerDir == nil {
		return errors.New("this host has no directory for containers")
	}
	dir := h.cfg.ContainerDir(c.agent, c.id)
	ws := filepath.Join(dir, "workspace")
	if err := os.MkdirAll(ws, 0o700); err != nil {
		return fmt.Errorf("container directory: %w", err)
	}
	// Unix socket paths are short (108 bytes): the sockets and the CA live
	// in a directory of their own.
	sockDir, err := os.MkdirTemp("", "damper-sb-")
	if err != nil {
		return err
	}
	c.sockDir = sockDir
	sock := filepath.Join(sockDir, "sandboxd.sock")
	egressSock := filepath.Join(sockDir, "egress.sock")
	caFile := filepath.Join(sockDir, "ca.pem")
	if err := os.WriteFile(caFile, h.ca.certPEM, 0o644); err != nil {
		return err
	}

	attr := &syscall.SysProcAttr{Setpgid: true}
	uid := -1
	if os.Geteuid() == 0 {
		// A child of root runs as a user of its own (one per agent
		// instance), so it can read neither the host's memory and
		// environment nor another instance's files: sandboxd drops to it
		// once it holds its directory and sockets.
		uid = uidFor(c.agent + "/" + c.id)
		for _, p := range []string{ws, sockDir} {
			if err := os.Chown(p, uid, uid); err != nil {
				return err
			}
		}
		if err := chownTree(ws, uid); err != nil {
			return err
		}
	}
	setDeathSignal(attr)

	isolate := h.cfg.Isolate != "off" && isolationPossible()
	if h.cfg.Isolate == "require" && !isolate {
		return errors.New("the container cannot have a network namespace of its own on this host (sandbox isolation: require)")
	}
	var pl net.Listener
	proxyURL := ""
	if isolate {
		if pl, err = net.Listen("unix", egressSock); err != nil {
			return err
		}
		os.Chmod(egressSock, 0o666) // inside a directory only the child and the host may enter
		proxyURL = "http://" + proxyPort
		isolateAttr(attr)
	} else {
		if pl, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return err
		}
		proxyURL = "http://" + pl.Addr().String()
	}
	egress := h.cfg.Egress
	if egress == nil {
		egress = func(context.Context, string, string, wire.EgressRequest) (*Outcome, error) {
			return &Outcome{Decision: wire.EgressDecision{Reason: "no_policy", Detail: "this host decides no egress"}}, nil
		}
	}
	c.proxy = newProxy(c.agent, c.id, egress, h.ca, h.log.With("agent", c.agent, "id", c.id))
	go c.proxy.serve(pl)

	argv := append(append([]string(nil), h.cfg.Sandboxd...), "--root", ws, "--listen", "unix:"+sock)
	if isolate {
		argv = append(argv, "--loopback", "--bridge", proxyPort+"=unix:"+egressSock)
	}
	if uid >= 0 {
		argv = append(argv, "--user", fmt.Sprint(uid))
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = ws
	cmd.Env = childEnv(ws, proxyURL, caFile)
	cmd.SysProcAttr = attr
	logw := &lineLog{log: h.log.With("agent", c.agent, "id", c.id, "from", "sandboxd")}
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		c.proxy.close()
		if isolate && h.cfg.Isolate == "auto" {
			noIsolation(err)
			h.log.Warn("containers run without a network namespace of their own: a command that ignores HTTP_PROXY reaches the network directly", "err", err)
			os.RemoveAll(sockDir)
			return c.start(ctx)
		}
		return fmt.Errorf("start sandboxd: %w", err)
	}
	c.cmd, c.isolated = cmd, isolate
	c.exited = make(chan struct{})
	go func() { cmd.Wait(); close(c.exited) }()

	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: 8,
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-c.exited:
			c.proxy.close()
			return fmt.Errorf("sandboxd exited at start (%v); its output is in the host's log", cmd.ProcessState)
		case <-ctx.Done():
			c.stop()
			return ctx.Err()
		default:
		}
		if _, err := os.Stat(sock); err == nil {
			cl, err := sandboxd.Dial(ctx, "http://sandboxd", hc, sandbox.KindContainer)
			if err == nil {
				c.client = cl
				return nil
			}
		}
		if time.Now().After(deadline) {
			c.stop()
			return errors.New("sandboxd did not answer within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stop ends the child's process group and its proxy; its files stay.
func (c *child) stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
	if c.proxy != nil {
		c.proxy.close()
	}
	if c.sockDir != "" {
		os.RemoveAll(c.sockDir)
	}
}

// childEnv is all a child and its commands see of the world: no
// credential, the proxy, and the CA that signs what the proxy answers.
func childEnv(ws, proxyURL, caFile string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	return []string{
		"PATH=" + path,
		"HOME=" + ws,
		"LANG=C.UTF-8",
		"HTTP_PROXY=" + proxyURL, "HTTPS_PROXY=" + proxyURL,
		"http_proxy=" + proxyURL, "https_proxy=" + proxyURL,
		"NO_PROXY=", "no_proxy=",
		"SSL_CERT_FILE=" + caFile,
		"REQUESTS_CA_BUNDLE=" + caFile,
		"NODE_EXTRA_CA_CERTS=" + caFile,
		"CURL_CA_BUNDLE=" + caFile,
		"GIT_SSL_CAINFO=" + caFile,
	}
}

// uidFor is the user a child of root runs as: one per agent instance, in
// a range no system assigns.
func uidFor(key string) int {
	var h uint32 = 2166136261
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return 1<<30 + int(h&0xffffff)
}

func chownTree(root string, uid int) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
}

// lineLog writes a child's output to the log, a line a record.
type lineLog struct {
	mu  sync.Mutex
	log *slog.Logger
	buf []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			break
		}
		l.log.Debug(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 4096 {
		l.log.Debug(string(l.buf))
		l.buf = l.buf[:0]
	}
	return len(p), nil
}
