package local

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
)

// ErrNotDamperModule is returned for a wasm module without damper_manifest.
var ErrNotDamperModule = errors.New("not a damper module (no " + wire.ExportManifest + " export)")

// ABIError is returned for a module that speaks another ABI version.
type ABIError struct {
	Module int // the version the module's manifest names
	Host   int // the version this host speaks (wire.Version)
}

func (e *ABIError) Error() string {
	return fmt.Sprintf("module speaks damper ABI version %d, this host speaks version %d", e.Module, e.Host)
}

// caches holds one compilation cache per directory for the whole process:
// wazero shares the compiled code of a cache among all runtimes using it, so
// every Host (and ReadManifest) in a process compiles a module once.
var caches struct {
	sync.Mutex
	m map[string]wazero.CompilationCache
}

func compilationCache(dir string) (wazero.CompilationCache, error) {
	caches.Lock()
	defer caches.Unlock()
	if c, ok := caches.m[dir]; ok {
		return c, nil
	}
	var c wazero.CompilationCache
	if dir == "" {
		c = wazero.NewCompilationCache()
	} else {
		var err error
		if c, err = wazero.NewCompilationCacheWithDir(dir); err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", dir, err)
		}
	}
	if caches.m == nil {
		caches.m = map[string]wazero.CompilationCache{}
	}
	caches.m[dir] = c
	return c, nil
}

// engine is one compiled module and the runtime that instantiates it.
type engine struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	logger   *slog.Logger
}

func newEngine(ctx context.Context, wasm []byte, cfg Config) (*engine, error) {
	cache, err := compilationCache(cfg.cacheDir)
	if err != nil {
		return nil, err
	}
	pages := uint32(min(cfg.memoryLimit/65536, 65536))
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(cache).
		WithMemoryLimitPages(pages))
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("compile module: %w", err)
	}
	exports := compiled.ExportedFunctions()
	if _, ok := exports[wire.ExportManifest]; !ok {
		rt.Close(ctx)
		return nil, ErrNotDamperModule
	}
	for _, name := range []string{wire.ExportAlloc, wire.ExportStart, wire.ExportResume, wire.ExportCancel} {
		if _, ok := exports[name]; !ok {
			rt.Close(ctx)
			return nil, fmt.Errorf("module lacks the %s export", name)
		}
	}
	if _, ok := compiled.ExportedMemories()["memory"]; !ok {
		rt.Close(ctx)
		return nil, errors.New("module exports no memory")
	}
	return &engine{rt: rt, compiled: compiled, logger: cfg.logger}, nil
}

func (e *engine) close(ctx context.Context) error {
	return e.rt.Close(ctx)
}

// manifest reads and checks the manifest from a fresh module instance.
func (e *engine) manifest(ctx context.Context) (wire.Manifest, error) {
	mi, err := e.instantiate(ctx, e.logger)
	if err != nil {
		return wire.Manifest{}, err
	}
	defer mi.close(ctx)
	out, err := mi.call(ctx, mi.fnManifest, -1, nil)
	if err != nil {
		return wire.Manifest{}, fmt.Errorf("%s: %w", wire.ExportManifest, err)
	}
	var m wire.Manifest
	if err := json.Unmarshal(out, &m); err != nil {
		return wire.Manifest{}, fmt.Errorf("%s returned malformed JSON: %w", wire.ExportManifest, err)
	}
	if m.ABI != wire.Version {
		return m, &ABIError{Module: m.ABI, Host: wire.Version}
	}
	return m, nil
}

// moduleInstance is one instantiated copy of the module. It takes one export
// call at a time (concurrent calls corrupt a Go guest); any failed call
// leaves it broken for good.
type moduleInstance struct {
	mu         sync.Mutex
	mod        api.Module
	fnAlloc    api.Function
	fnManifest api.Function
	fnStart    api.Function
	fnResume   api.Function
	fnCancel   api.Function
	broken     error // set by the first trap; every later call fails with it
	nextTask   uint64

	// The input buffer damper_alloc handed out last: reused for every
	// input that fits (docs/abi.md), so a round trip makes one export
	// call, not two.
	inPtr, inCap uint32
}

// instantiate creates a module instance with nothing from the host in it: no
// args, no environment, no file system. Only stdout/stderr (to the logger),
// randomness and real clocks.
func (e *engine) instantiate(ctx context.Context, logger *slog.Logger) (*moduleInstance, error) {
	initStderr := &initOutput{}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous, so many instances of one module coexist
		WithStartFunctions("_initialize").
		WithStdout(newLogWriter(logger, slog.LevelInfo, "stdout")).
		WithStderr(io.MultiWriter(newLogWriter(logger, slog.LevelWarn, "stderr"), initStderr)).
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep()
	mod, err := e.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, memoryAllocator()), e.compiled, cfg)
	if err != nil {
		return nil, initError(err, initStderr.done())
	}
	initStderr.done()
	return &moduleInstance{
		mod:        mod,
		fnAlloc:    mod.ExportedFunction(wire.ExportAlloc),
		fnManifest: mod.ExportedFunction(wire.ExportManifest),
		fnStart:    mod.ExportedFunction(wire.ExportStart),
		fnResume:   mod.ExportedFunction(wire.ExportResume),
		fnCancel:   mod.ExportedFunction(wire.ExportCancel),
	}, nil
}

// initOutput keeps what a module instance writes to stderr while it
// initializes (Go's package init functions, where agents register), up to
// maxInitOutput bytes: a panic there prints its message and the goroutine's
// stack, which is what the author needs, not wazero's wasm stack.
type initOutput struct {
	mu     sync.Mutex
	buf    []byte
	closed bool
}

const maxInitOutput = 32 << 10

func (o *initOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		o.buf = append(o.buf, p[:min(len(p), maxInitOutput-len(o.buf))]...)
	}
	return len(p), nil
}

// done stops keeping output and returns what was kept.
func (o *initOutput) done() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	out := strings.TrimSpace(string(o.buf))
	o.buf = nil
	return out
}

// initError is the error for a module instance that failed to initialize:
// what the guest wrote to stderr (a Go panic with its stack) when it wrote
// anything, wazero's error otherwise.
func initError(err error, stderr string) error {
	var exit *sys.ExitError
	what := "the module failed while initializing (in a package init function)"
	if errors.As(err, &exit) {
		what = fmt.Sprintf("the module exited with code %d while initializing (os.Exit in a package init function)", exit.ExitCode())
	}
	if stderr == "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s; its stderr:\n%s", what, stderr)
}

// trapError is a failed export call: the module instance is unusable.
type trapError struct{ err error }

func (e *trapError) Error() string { return "module trapped: " + e.err.Error() }
func (e *trapError) Unwrap() error { return e.err }

// newTaskID returns a task id unique within this module instance.
func (mi *moduleInstance) newTaskID() string {
	mi.mu.Lock()
	defer mi.mu.Unlock()
	mi.nextTask++
	return fmt.Sprintf("t%d", mi.nextTask)
}

// call writes fn's input (see callWith) into guest memory, calls fn and
// copies the packed output out. Every failure is a trap and breaks the
// instance.
func (mi *moduleInstance) call(ctx context.Context, fn api.Function, size int, write func(dst []byte) []byte) ([]byte, error) {
	mi.mu.Lock()
	defer mi.mu.Unlock()
	if mi.broken != nil {
		return nil, mi.broken
	}
	out, err := mi.callWith(ctx, fn, size, write)
	if err != nil {
		mi.broken = &trapError{err}
		return nil, mi.broken
	}
	return out, nil
}

// callWith calls fn with an input that write appends to dst: written
// straight into the guest's input buffer (sized for about size bytes), so
// a large input, a batch of whole bodies, is never held twice by the host.
// size < 0 calls fn with no input.
func (mi *moduleInstance) callWith(ctx context.Context, fn api.Function, size int, write func(dst []byte) []byte) ([]byte, error) {
	var params []uint64
	if size >= 0 {
		if err := mi.ensureInput(ctx, size); err != nil {
			return nil, err
		}
		view, ok := mi.mod.Memory().Read(mi.inPtr, mi.inCap)
		if !ok {
			return nil, fmt.Errorf("%s returned %#x, outside memory for %d bytes", wire.ExportAlloc, mi.inPtr, mi.inCap)
		}
		in := write(view[:0])
		if len(in) > 0 && &in[0] != &view[0] {
			// It outgrew the buffer (more escaping than the size guessed):
			// a buffer of its size, and one copy.
			if err := mi.ensureInput(ctx, len(in)); err != nil {
				return nil, err
			}
			if !mi.mod.Memory().Write(mi.inPtr, in) {
				return nil, fmt.Errorf("%s returned %#x, outside memory for %d bytes", wire.ExportAlloc, mi.inPtr, len(in))
			}
		}
		params = []uint64{uint64(mi.inPtr), uint64(len(in))}
	}
	res, err := fn.Call(ctx, params...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn.Definition().ExportNames()[0], err)
	}
	ptr, n := uint32(res[0]>>32), uint32(res[0])
	if n > wire.MaxOutput {
		return nil, fmt.Errorf("%s returned %d bytes, over the %d limit", fn.Definition().ExportNames()[0], n, wire.MaxOutput)
	}
	// The memory may have grown during the call: read through Memory() now.
	view, ok := mi.mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("%s returned [%#x, +%d), outside memory", fn.Definition().ExportNames()[0], ptr, n)
	}
	return append([]byte(nil), view...), nil
}

// ensureInput makes the guest's input buffer fit n bytes, asking
// damper_alloc for a new one when it does not, or when a large buffer can
// give way to a small one (docs/abi.md).
func (mi *moduleInstance) ensureInput(ctx context.Context, n int) error {
	if mi.inCap != 0 && n <= int(mi.inCap) && (mi.inCap <= wire.MaxReusedBuffer || n > wire.MaxReusedBuffer) {
		return nil
	}
	size := max(n, wire.MinInputBuffer)
	if n > wire.MaxReusedBuffer {
		size = n
	}
	res, err := mi.fnAlloc.Call(ctx, uint64(size))
	if err != nil {
		return fmt.Errorf("%s: %w", wire.ExportAlloc, err)
	}
	mi.inPtr, mi.inCap = uint32(res[0]), uint32(size)
	return nil
}

// task calls start, resume or cancel with in and decodes the output. A
// malformed output or one for another task is a broken guest: a trap.
func (mi *moduleInstance) task(ctx context.Context, fn api.Function, task string, in any) (wire.Output, error) {
	var (
		size  int
		write func([]byte) []byte
	)
	if r, ok := in.(*wire.Resume); ok {
		// Every round trip's input: by hand (see wirejson.AppendResume),
		// straight into the guest's memory.
		size, write = wirejson.ResumeSize(r), func(dst []byte) []byte { return wirejson.AppendResume(dst, r) }
	} else {
		input, err := json.Marshal(in)
		if err != nil {
			return wire.Output{}, fmt.Errorf("encode input of task %s: %w", task, err)
		}
		size, write = len(input), func(dst []byte) []byte { return append(dst, input...) }
	}
	raw, err := mi.call(ctx, fn, size, write)
	if err != nil {
		return wire.Output{}, err
	}
	// Every round trip's output: decoded by hand, its effects' args and
	// result kept as slices of raw (a copy of guest memory, used by no one
	// else) rather than copied and validated again. The hand-written
	// decoder accepts and refuses what encoding/json does (wirejson's
	// tests); on a refusal encoding/json says why, as it always has.
	out, err := wirejson.DecodeOutput(raw)
	if err != nil {
		if jerr := json.Unmarshal(raw, &out); jerr != nil {
			err = jerr
		}
		return wire.Output{}, mi.breakWith(fmt.Errorf("task %s: malformed output: %w", task, err))
	}
	if out.Task != task {
		return wire.Output{}, mi.breakWith(fmt.Errorf("task %s: output names task %q", task, out.Task))
	}
	if !out.Done && len(out.Effects) == 0 {
		return wire.Output{}, mi.breakWith(fmt.Errorf("task %s: output is neither done nor a batch", task))
	}
	return out, nil
}

func (mi *moduleInstance) breakWith(err error) error {
	mi.mu.Lock()
	defer mi.mu.Unlock()
	if mi.broken == nil {
		mi.broken = &trapError{err}
	}
	return mi.broken
}

// memorySize is the instance's linear memory in bytes.
func (mi *moduleInstance) memorySize() uint32 {
	return mi.mod.Memory().Size()
}

func (mi *moduleInstance) close(ctx context.Context) error {
	return mi.mod.Close(ctx)
}
