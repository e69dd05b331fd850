// Package build compiles a Go package into a damper module: a wasip1 reactor
// built with -buildmode=c-shared.
package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Option changes how Module builds.
type Option func(*options)

type options struct {
	ldflags []string
	dir     string
	goCmd   string
}

// WithLDFlags adds flags to the linker's -ldflags, e.g. "-X pkg.name=value".
// Flags from several calls are joined with spaces.
func WithLDFlags(flags ...string) Option {
	return func(o *options) { o.ldflags = append(o.ldflags, flags...) }
}

// WithDir runs go build in dir, so a relative package path resolves against
// dir's module. The default is the process's working directory.
func WithDir(dir string) Option {
	return func(o *options) { o.dir = dir }
}

// WithGo names the go command to run; the default is "go" from PATH.
func WithGo(path string) Option {
	return func(o *options) { o.goCmd = path }
}

// Module builds pkg into the wasm module out, creating out's directory.
//
// The build is deterministic (-trimpath, no VCS stamp), so rebuilding
// unchanged sources yields the same bytes and the host's compilation cache
// keeps hitting. On failure the error holds go's own output.
func Module(ctx context.Context, pkg, out string, opts ...Option) error {
	o := options{goCmd: "go"}
	for _, opt := range opts {
		opt(&o)
	}
	if pkg == "" {
		pkg = "."
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("build %s: %w", pkg, err)
	}
	args := []string{"build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false"}
	// -s leaves out the wasm name section (~50 KB gzip of the shipped
	// module): Go's own panics and tracebacks read its pclntab, not the
	// section, which only names functions in an engine's trap trace.
	args = append(args, "-ldflags="+strings.Join(append([]string{"-s"}, o.ldflags...), " "))
	args = append(args, "-o", out, pkg)

	cmd := exec.CommandContext(ctx, o.goCmd, args...)
	cmd.Dir = o.dir
	// The target is set last, so it wins over a GOOS/GOARCH the caller's
	// environment may hold (exec keeps the last value of a repeated key).
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		var exit *exec.ExitError
		if errors.As(err, &exit) && msg != "" {
			return fmt.Errorf("go build %s failed:\n%s", pkg, msg)
		}
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, msg)
	}
	return nil
}
