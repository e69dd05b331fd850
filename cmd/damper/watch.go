package main

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// watcher polls the sources of a Go module (its .go files but the tests,
// go.mod and go.sum) and reports when they change. Polling a small tree
// costs little, needs no platform API, and sees every editor's way of
// saving (rewrite, rename over, delete and create).
type watcher struct {
	root     string
	skip     map[string]bool // absolute directories not to descend into
	interval time.Duration
	seen     map[string]stamp
}

type stamp struct {
	size    int64
	modTime time.Time
}

// watchInterval is how often a watcher looks; settle is how long the
// sources must stay unchanged before a change is reported, so that a
// save touching several files is one rebuild.
const (
	watchInterval = 250 * time.Millisecond
	settle        = 150 * time.Millisecond
)

// newWatcher watches the module that holds package pkg, not descending
// into skip (the build output) nor into node_modules, testdata, hidden
// directories and nested modules.
func newWatcher(ctx context.Context, pkg string, skip ...string) (*watcher, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-f", "{{if .Module}}{{.Module.Dir}}{{else}}{{.Dir}}{{end}}", pkg).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, &goError{args: "go list " + pkg, stderr: string(ee.Stderr)}
		}
		return nil, err
	}
	w := &watcher{root: strings.TrimSpace(string(out)), skip: map[string]bool{}, interval: watchInterval}
	for _, s := range skip {
		if abs, err := filepath.Abs(s); err == nil {
			w.skip[abs] = true
		}
	}
	w.seen = w.scan()
	return w, nil
}

// goError is a go command that failed, with what it printed.
type goError struct{ args, stderr string }

func (e *goError) Error() string { return e.args + ": " + strings.TrimSpace(e.stderr) }

// scan stats every watched file.
func (w *watcher) scan() map[string]stamp {
	files := map[string]stamp{}
	filepath.WalkDir(w.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed mid-walk: the next scan sees it gone
		}
		name := d.Name()
		if d.IsDir() {
			if path == w.root {
				return nil
			}
			if w.skip[path] || name == "node_modules" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !(strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") || name == "go.mod" || name == "go.sum") {
			return nil
		}
		if info, err := d.Info(); err == nil {
			files[path] = stamp{info.Size(), info.ModTime()}
		}
		return nil
	})
	return files
}

// changed returns the files (relative to the root) that differ between
// two scans: changed, added or removed.
func (w *watcher) changed(before, after map[string]stamp) []string {
	var out []string
	for p, s := range after {
		if old, ok := before[p]; !ok || old != s {
			out = append(out, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			out = append(out, p)
		}
	}
	for i, p := range out {
		if rel, err := filepath.Rel(w.root, p); err == nil {
			out[i] = rel
		}
	}
	sort.Strings(out)
	return out
}

// run calls onChange with the changed files each time the sources change
// and settle, until ctx ends. Calls never overlap: a change made while
// onChange runs is reported by the next call.
func (w *watcher) run(ctx context.Context, onChange func(changed []string)) {
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := w.scan()
		changed := w.changed(w.seen, now)
		if len(changed) == 0 {
			continue
		}
		// Wait until a scan finds nothing new, for at most a few seconds
		// (a generator rewriting files all the time still gets builds).
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
			select {
			case <-ctx.Done():
				return
			case <-time.After(settle):
			}
			next := w.scan()
			if len(w.changed(now, next)) == 0 {
				break
			}
			now = next
		}
		changed = w.changed(w.seen, now)
		w.seen = now
		if len(changed) > 0 {
			onChange(changed)
		}
	}
}
