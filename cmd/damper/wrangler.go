package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
)

// wranglerBin is the pinned wrangler that `npm ci` installs from
// package-lock.json.
var wranglerBin = filepath.Join("node_modules", ".bin", "wrangler")

// wranglerCmd builds the module, then runs `wrangler dev` or `wrangler
// deploy` with the arguments after "--".
func wranglerCmd(name string, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet(name, "[-o build/damper.wasm] [--no-build] [package] [-- wrangler-args...]", stderr)
	out := fs.String("o", defaultModule, "`path` of the module wrangler.toml imports")
	noBuild := fs.Bool("no-build", false, "use the module already built")
	if err := fs.Parse(args); err != nil {
		return parseError(err)
	}
	pkg, rest := packageAndPassThrough(args, fs.Args())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *noBuild {
		if _, err := os.Stat(*out); err != nil {
			fmt.Fprintf(stderr, "damper %s: %v (build it with: damper build -o %s <package>)\n", name, err, *out)
			return 1
		}
	} else if err := buildModule(ctx, pkg, *out, stdout); err != nil {
		fmt.Fprintf(stderr, "damper %s: %v\n", name, err)
		return 1
	}
	stop() // from here on, Ctrl-C is wrangler's to handle

	if _, err := os.Stat(wranglerBin); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(stderr, "damper: node_modules is missing; running npm ci")
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		npm.Stdout, npm.Stderr = stdout, stderr
		if err := npm.Run(); err != nil {
			fmt.Fprintf(stderr, "damper %s: npm ci: %v\n", name, err)
			return 1
		}
	}
	// wrangler gets the terminal's signals itself (same process group);
	// ignoring them here keeps damper alive to return wrangler's exit code.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	defer signal.Reset(os.Interrupt, syscall.SIGTERM)
	cmd := exec.Command(wranglerBin, append([]string{name}, rest...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(os.Environ(), "WRANGLER_SEND_METRICS=false")
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		fmt.Fprintf(stderr, "damper %s: %v\n", name, err)
		return 1
	}
	return 0
}

// packageAndPassThrough splits what flag parsing left (rest, a suffix of
// args) into the package to build (default ".") and wrangler's arguments,
// those after "--". flag consumes a "--" that ends the flags: then
// everything left is wrangler's.
func packageAndPassThrough(args, rest []string) (string, []string) {
	consumed := len(args) - len(rest)
	terminated := consumed > 0 && args[consumed-1] == "--"
	pkg := "."
	if len(rest) > 0 && rest[0] != "--" && !terminated {
		pkg, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	return pkg, rest
}
