// Package testmodule builds the test module (./tests/module: hello plus the
// probe agents) for tests of the hosts, once per test process.
package testmodule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/damperdev/damper/internal/build"
)

// Package is the import path of the test module, relative to the repository.
const Package = "./tests/module"

// abiOverride is the linker variable the guest runtime reads instead of its
// own ABI version, so a test can build a module that speaks another version.
const abiOverride = "github.com/damperdev/damper/runtime/abi.abiOverride"

type result struct {
	once sync.Once
	path string
	err  error
}

var (
	mu     sync.Mutex
	builds = map[string]*result{}
)

// Path returns the path of the test module, building it on first use in this
// process. It fails the test if the module does not build.
func Path(tb testing.TB) string {
	tb.Helper()
	return get(tb, "")
}

// WithABI returns the path of the test module built to claim ABI version
// version in its manifest, for the test of a host refusing it.
func WithABI(tb testing.TB, version string) string {
	tb.Helper()
	return get(tb, version)
}

func get(tb testing.TB, abi string) string {
	tb.Helper()
	mu.Lock()
	r, ok := builds[abi]
	if !ok {
		r = &result{}
		builds[abi] = r
	}
	mu.Unlock()
	r.once.Do(func() { r.path, r.err = buildModule(abi) })
	if r.err != nil {
		tb.Fatalf("building the test module: %v", r.err)
	}
	return r.path
}

func buildModule(abi string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	var opts []build.Option
	name := "module"
	if abi != "" {
		opts = append(opts, build.WithLDFlags("-X "+abiOverride+"="+abi))
		name = "module-abi-" + abi
	}
	// One stable directory per repository rather than a fresh temp dir per
	// process: the packages of one `go test` run build concurrently, and a
	// stable path leaves no files behind. Each build writes a temporary file
	// and renames it into place, so a reader never sees a partial module.
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "damper-testmodule-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, name+"-*.tmp")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	opts = append(opts, build.WithDir(root))
	if err := build.Module(context.Background(), Package, tmp.Name(), opts...); err != nil {
		return "", err
	}
	out := filepath.Join(dir, name+".wasm")
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}

// RepoRoot walks up from the working directory (a package directory under
// `go test`) to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}
