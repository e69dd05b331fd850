package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/damperdev/damper/internal/scaffold"
)

func initCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("init", "[--module PATH] [--force] [DIR]", stderr)
	modPath := fs.String("module", "", "the Go module `path`, such as example.com/myagents (default: DIR's name, in lower case)")
	force := fs.Bool("force", false, "write into a directory that is not empty, replacing files of the same names")
	replace := fs.String("replace-damper", "", "require damper from the checkout in `DIR` (a replace directive), for a damper built from source or damper's own tests")
	pos, rest, err := parseArgs(fs, args)
	if err != nil {
		return parseError(err)
	}
	pos = append(pos, rest...)
	if len(pos) > 1 {
		fs.Usage()
		return 2
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "damper init: %s\n", fmt.Sprintf(format, a...))
		return 1
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fail("%v", err)
	}
	p := scaffold.Project{Module: *modPath, Name: scaffold.Name(abs)}
	if p.Module == "" {
		p.Module = p.Name // a valid module path, like the directory's name
	}
	if *replace == "" {
		*replace = replacedBy() // a project made this way makes others the same way
	}
	if *replace != "" {
		if p.Replace, err = damperCheckout(*replace); err != nil {
			return fail("--replace-damper: %v", err)
		}
	} else if v := cliVersion(); publishedVersion(v) {
		p.Damper = v
	} else {
		return fail("this damper was built from source (version %s), so there is no published damper for the project to require: "+
			"install a released one (go install %s/cmd/damper@latest) and run that, or pass --replace-damper=DIR with the directory of your damper checkout",
			v, scaffold.DamperModule)
	}
	files, err := p.Files()
	if err != nil {
		return fail("%v", err)
	}
	if entries, err := os.ReadDir(abs); err == nil && len(entries) > 0 && !*force {
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if len(names) > 5 {
			names = append(names[:5], "…")
		}
		return fail("%s is not empty (%s): run it on a new or empty directory, or pass --force to write the project's files into it, replacing files of the same names",
			dir, strings.Join(names, ", "))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail("%v", err)
	}

	paths := make([]string, 0, len(files))
	for path := range files {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		full := filepath.Join(abs, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return fail("%v", err)
		}
		if err := os.WriteFile(full, files[path], 0o644); err != nil {
			return fail("%v", err)
		}
	}
	// go.sum, and the requirements damper brings, the way go would write
	// them: from the module cache when it has them, else the module proxy.
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = abs
	tidy.Stdout, tidy.Stderr = stderr, stderr
	if err := tidy.Run(); err != nil {
		return fail("go mod tidy in %s: %v (its output is above; the files are written: fix what it says, then run go mod tidy there)", dir, err)
	}

	version := p.Damper
	if p.Replace != "" {
		version = "from " + p.Replace
	}
	fmt.Fprintf(stdout, "damper init: wrote %s: module %s, damper %s\n", dir, p.Module, version)
	fmt.Fprintf(stdout, "  %s go.sum\n", strings.Join(paths, " "))
	fmt.Fprintf(stdout, "Next:\n")
	if dir != "." {
		fmt.Fprintf(stdout, "  cd %s\n", dir)
	}
	fmt.Fprint(stdout, `  go test ./...                              # the agent's test
  go tool damper build                       # build/damper.wasm, its manifest and the Worker
  go tool damper run hello '{"name":"Ada"}'  # one run, locally
  go tool damper dev                         # wrangler dev, rebuilding on every .go edit
`)
	return 0
}

// damperCheckout checks that dir holds damper's go.mod and returns it
// absolute, as a replace directive needs.
func damperCheckout(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("%s is not a damper checkout: %w", dir, err)
	}
	if m := moduleLine.FindSubmatch(b); m == nil || string(m[1]) != scaffold.DamperModule {
		return "", fmt.Errorf("%s is not a damper checkout: its go.mod is not module %s", dir, scaffold.DamperModule)
	}
	return abs, nil
}

var moduleLine = regexp.MustCompile(`(?m)^module\s+"?([^"\s]+)`)

// publishedVersion reports whether v is a version the module proxy could
// serve: not a build from a work tree.
func publishedVersion(v string) bool {
	return strings.HasPrefix(v, "v") && !strings.Contains(v, "+dirty") && !strings.Contains(v, "devel")
}
