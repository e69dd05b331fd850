package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/damperdev/damper/internal/build"
	"github.com/damperdev/damper/local"
)

const defaultModule = "build/damper.wasm"

func buildCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("build", "[-o build/damper.wasm] [package]", stderr)
	out := fs.String("o", defaultModule, "`path` of the module; manifest.json is written beside it")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	pkg := "."
	if fs.NArg() == 1 {
		pkg = fs.Arg(0)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := buildModule(ctx, pkg, *out, stdout); err != nil {
		fmt.Fprintf(stderr, "damper build: %v\n", err)
		return 1
	}
	return 0
}

// buildModule builds pkg into out, writes manifest.json beside it and
// prints the module's sizes.
func buildModule(ctx context.Context, pkg, out string, stdout io.Writer) error {
	if err := build.Module(ctx, pkg, out); err != nil {
		return err
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	m, err := local.ReadManifest(ctx, wasm, local.NewConfig())
	if err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	manifestPath := filepath.Join(filepath.Dir(out), "manifest.json")
	if err := os.WriteFile(manifestPath, append(manifest, '\n'), 0o644); err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(wasm)
	zw.Close()
	names := make([]string, len(m.Agents))
	for i, a := range m.Agents {
		names[i] = a.Name
	}
	fmt.Fprintf(stdout, "%s: %s raw, %s gzip; ABI %d; agents: %s\n%s\n",
		out, megabytes(len(wasm)), megabytes(gz.Len()), m.ABI, strings.Join(names, ", "), manifestPath)
	return nil
}

func megabytes(n int) string {
	return fmt.Sprintf("%.2f MB", float64(n)/1e6)
}

// parseError is the exit code for a flag parse error: 0 for -h.
func parseError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

func newFlagSet(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("damper "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: damper %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}
