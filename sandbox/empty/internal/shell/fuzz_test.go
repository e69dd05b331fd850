//go:build !wasip1

package shell

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/damperdev/damper/sandbox/empty/internal/memfs"
)

// FuzzRun runs arbitrary scripts: whatever the script, the shell must end
// within its step budget and never panic (a bug of the interpreter's own
// is rethrown here rather than turned into status 2). The seeds are the
// scripts compared with bash.
func FuzzRun(f *testing.F) {
	paths, _ := filepath.Glob("../../testdata/bash/*.txt")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		s := string(b)
		if i := strings.Index(s, "-- script --\n"); i >= 0 {
			s = s[i+len("-- script --\n"):]
			if j := strings.Index(s, "\n-- "); j >= 0 {
				s = s[:j+1]
			}
		}
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		rethrowBugs = true
		defer func() { rethrowBugs = false }()
		work := memfs.New(memfs.Limits{MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20, MaxFiles: 500})
		work.WriteFile("a.txt", []byte("one\ntwo\nthree\n"))
		tmp := memfs.New(memfs.Limits{MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20, MaxFiles: 500})
		var out, errb bytes.Buffer
		Run(Config{
			Mounts:   []Mount{{Dir: "/workspace", FS: work}, {Dir: "/tmp", FS: tmp}},
			Dir:      "/workspace",
			Env:      map[string]string{"HOME": "/workspace"},
			Stdin:    strings.NewReader("in\n"),
			Stdout:   &limited{&out, 1 << 20},
			Stderr:   &limited{&errb, 1 << 20},
			MaxSteps: 20_000,
			Deadline: time.Now().Add(5 * time.Second),
		}, script)
	})
}

// limited drops output past n bytes, as the sandbox's capture does.
type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
