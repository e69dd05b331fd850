package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/damperdev/damper/internal/build"
	"github.com/damperdev/damper/local"
	"github.com/damperdev/damper/worker"
)

const defaultModule = "build/damper.wasm"

// runtimePackage is what a module's agents import to register.
const runtimePackage = "github.com/damperdev/damper/runtime/agent"

func buildCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("build", "[-o build/damper.wasm] [package]", stderr)
	out := fs.String("o", defaultModule, "`path` of the module; manifest.json and the Worker (worker/) are written beside it")
	pos, rest, err := parseArgs(fs, args)
	if err != nil {
		return parseError(err)
	}
	pos = append(pos, rest...)
	if len(pos) > 1 {
		fs.Usage()
		return 2
	}
	pkg := "."
	if len(pos) == 1 {
		pkg = pos[0]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	mod, err := compileModule(ctx, pkg)
	if err == nil {
		err = mod.write(*out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "damper build: %v\n", err)
		return 1
	}
	mod.report(stdout, *out)
	return 0
}

// module is a built and checked damper module, not yet written.
type module struct {
	pkg      string
	wasm     []byte
	manifest local.Manifest
}

// compileModule builds the main package pkg into a module and checks it the
// way a host would load it: a damper module, of this ABI, with at least one
// agent, whose init functions succeed and whose policies compile. The
// errors say what to change.
func compileModule(ctx context.Context, pkg string) (*module, error) {
	tmp, err := os.CreateTemp("", "damper-build-*.wasm")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := build.Module(ctx, pkg, tmp.Name()); err != nil {
		if strings.Contains(err.Error(), "requires exactly one main package") {
			return nil, notMainError(ctx, pkg, err)
		}
		return nil, err
	}
	wasm, err := os.ReadFile(tmp.Name())
	if err != nil {
		return nil, err
	}
	m, err := local.ReadManifest(ctx, wasm, local.NewConfig())
	switch {
	case errors.Is(err, local.ErrNotDamperModule):
		return nil, fmt.Errorf("%s is a main package that does not import the damper runtime, so it has no agents to serve: "+
			"import the packages of your agents from it (they import %s and call agent.Register in an init function)", pkgLabel(pkg), runtimePackage)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", pkgLabel(pkg), err)
	case len(m.Agents) == 0:
		return nil, fmt.Errorf("%s registers no agent: call agent.Register (%s) in an init function of a package it imports, "+
			"as the hello agent of `damper init` does", pkgLabel(pkg), runtimePackage)
	}
	return &module{pkg: pkg, wasm: wasm, manifest: m}, nil
}

// pkgLabel names the package pattern pkg in a message.
func pkgLabel(pkg string) string {
	if pkg == "." {
		return "the package in this directory"
	}
	return pkg
}

// notMainError explains a go build refusal of pkg for not being one main
// package, naming what it is.
func notMainError(ctx context.Context, pkg string, buildErr error) error {
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{.ImportPath}} {{.Name}}", pkg).Output()
	if err != nil {
		return buildErr
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return fmt.Errorf("%s matches no package: name the main package that imports your agents", pkg)
	}
	if len(lines) != 1 {
		return fmt.Errorf("%s names %d packages; damper build takes one main package, the one that imports your agents", pkg, len(lines))
	}
	path, name, _ := strings.Cut(lines[0], " ")
	return fmt.Errorf("%s is package %s, not a main package: damper builds a module from a main package that imports your agents' packages, e.g.\n\n"+
		"\tpackage main\n\n\timport _ %q\n\n\tfunc main() {}", path, name, path)
}

// write writes the module to out, its manifest.json beside it, and the
// Worker that imports both into worker/ beside them. Files that already
// hold the same bytes are left alone, so that wrangler dev reloads only
// for a module that changed.
func (m *module) write(out string) error {
	manifest, err := json.MarshalIndent(m.manifest, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(out)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeIfChanged(out, m.wasm); err != nil {
		return err
	}
	if err := writeIfChanged(filepath.Join(dir, "manifest.json"), append(manifest, '\n')); err != nil {
		return err
	}
	return worker.Write(dir, filepath.Base(out))
}

// report prints what write wrote and the module's size.
func (m *module) report(stdout io.Writer, out string) {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(m.wasm)
	zw.Close()
	dir := filepath.Dir(out)
	fmt.Fprintf(stdout, "%s: %s raw, %s gzip; ABI %d; agents: %s\n%s\n%s\n",
		out, megabytes(len(m.wasm)), megabytes(gz.Len()), m.manifest.ABI, strings.Join(m.agents(), ", "),
		filepath.Join(dir, "manifest.json"), filepath.Join(dir, worker.Dir, worker.Entry))
}

func (m *module) agents() []string {
	names := make([]string, len(m.manifest.Agents))
	for i, a := range m.manifest.Agents {
		names[i] = a.Name
	}
	return names
}

func megabytes(n int) string {
	return fmt.Sprintf("%.2f MB", float64(n)/1e6)
}

// writeIfChanged writes b to path through a temporary file renamed into
// place (a watcher never sees half a module), unless path holds b already.
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
