//go:build !wasip1

package empty

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/sandbox"
)

// A script case is a txtar-like file: its comment says what it checks,
// then "-- script --", optional "-- stdin --", and the files the script
// starts with as "-- files/NAME --" sections.
type scriptCase struct {
	name   string
	script string
	stdin  string
	files  map[string]string
}

func parseCase(name, text string) scriptCase {
	c := scriptCase{name: name, files: map[string]string{}}
	var section string
	var body strings.Builder
	flush := func() {
		switch {
		case section == "script":
			c.script = body.String()
		case section == "stdin":
			c.stdin = body.String()
		case strings.HasPrefix(section, "files/"):
			c.files[strings.TrimPrefix(section, "files/")] = body.String()
		}
		body.Reset()
	}
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(line, "-- ") && strings.HasSuffix(strings.TrimRight(line, "\n"), " --") {
			flush()
			section = strings.TrimSuffix(strings.TrimPrefix(strings.TrimRight(line, "\n"), "-- "), " --")
			continue
		}
		if section != "" {
			body.WriteString(line)
		}
	}
	flush()
	return c
}

func loadCases(t *testing.T) []scriptCase {
	paths, err := filepath.Glob("testdata/bash/*.txt")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(paths), 80, "the shell is held to at least 80 scripts")
	var cases []scriptCase
	for _, p := range paths {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		c := parseCase(strings.TrimSuffix(filepath.Base(p), ".txt"), string(b))
		require.NotEmpty(t, c.script, "%s has no script", p)
		cases = append(cases, c)
	}
	return cases
}

// outcome is what a script did: what it printed, how it ended, and the
// files it left.
type outcome struct {
	stdout string
	code   int
	files  map[string]string // path -> content; directories end in "/"
}

func runBash(t *testing.T, c scriptCase) outcome {
	t.Helper()
	dir := t.TempDir()
	for name, content := range c.files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", c.script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "LC_ALL=C", "TZ=UTC", "TMPDIR=" + dir}
	cmd.Stdin = strings.NewReader(c.stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err, "bash: %s", errb.String())
	}
	o := outcome{stdout: strings.ReplaceAll(out.String(), dir, Dir), code: code, files: map[string]string{}}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			o.files[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		o.files[rel] = string(b)
		return err
	}))
	return o
}

func runEmpty(t *testing.T, c scriptCase) (outcome, string) {
	t.Helper()
	sb := newMemory(sandbox.Limits{})
	ctx := t.Context()
	for name, content := range c.files {
		require.NoError(t, sb.WriteFile(ctx, name, []byte(content)))
	}
	res, err := sb.Exec(ctx, sandbox.Cmd{Script: c.script, Stdin: c.stdin, Timeout: 30 * time.Second})
	require.NoError(t, err)
	o := outcome{stdout: res.Stdout, code: res.ExitCode, files: map[string]string{}}
	var walk func(dir string)
	walk = func(dir string) {
		entries, err := sb.ReadDir(ctx, dir)
		require.NoError(t, err)
		for _, e := range entries {
			p := e.Name()
			if dir != "." {
				p = dir + "/" + e.Name()
			}
			if e.IsDir() {
				o.files[p+"/"] = ""
				walk(p)
				continue
			}
			b, err := sb.ReadFile(ctx, p)
			require.NoError(t, err)
			o.files[p] = string(b)
		}
	}
	walk(".")
	return o, res.Stderr
}

// TestScriptsAgainstBash runs every script of testdata/bash with bash on
// this machine, in a temporary directory holding the same files, and in
// the empty sandbox, and requires the same standard output, exit code and
// files. Standard error is not compared: the messages name their shell.
func TestScriptsAgainstBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("the shell conformance suite compares with bash, which is not on PATH: %v", err)
	}
	for _, c := range loadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			want := runBash(t, c)
			got, stderr := runEmpty(t, c)
			assert.Equal(t, want.stdout, got.stdout, "stdout (our stderr: %s)", stderr)
			assert.Equal(t, want.code, got.code, "exit code (our stderr: %s)", stderr)
			assert.Equal(t, sortedKeys(want.files), sortedKeys(got.files), "the files left")
			for name, content := range want.files {
				if g, ok := got.files[name]; ok {
					assert.Equal(t, content, g, "content of %s", name)
				}
			}
		})
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
