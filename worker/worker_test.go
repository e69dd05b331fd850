package worker

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Write lays out the Worker exactly as this directory holds it: every
// module, byte for byte, but the test files.
func TestWriteCopiesTheWorker(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, "damper.wasm"))
	src, err := filepath.Glob("*.js")
	require.NoError(t, err)
	require.Contains(t, src, Entry)
	written, err := filepath.Glob(filepath.Join(dir, Dir, "*"))
	require.NoError(t, err)
	assert.Len(t, written, len(src), "the .js files and nothing else: %q", written)
	for _, f := range src {
		want, err := os.ReadFile(f)
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, Dir, f))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), f)
	}
	index, err := os.ReadFile(filepath.Join(dir, Dir, Entry))
	require.NoError(t, err)
	assert.Contains(t, string(index), `import wasm from "../damper.wasm";`)
	assert.Contains(t, string(index), `import manifest from "../manifest.json";`)
}

func TestWriteNamesTheModule(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, "my agents.wasm"))
	index, err := os.ReadFile(filepath.Join(dir, Dir, Entry))
	require.NoError(t, err)
	assert.Contains(t, string(index), `import wasm from "../my agents.wasm";`)
	assert.NotContains(t, string(index), `"../damper.wasm"`)

	for _, bad := range []string{"", "../x.wasm", "a/b.wasm", `a"b.wasm`, `a\b.wasm`} {
		assert.Error(t, Write(t.TempDir(), bad), "%q", bad)
	}
}

// A second Write changes nothing on disk that did not change, so wrangler
// dev, which reloads when a file it bundles changes, does not reload; a
// stale module of an older damper goes, other files stay.
func TestWriteAgain(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Write(dir, "damper.wasm"))
	index := filepath.Join(dir, Dir, Entry)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	require.NoError(t, os.Chtimes(index, old, old))
	stale := filepath.Join(dir, Dir, "gone.js")
	require.NoError(t, os.WriteFile(stale, []byte("// from an older damper"), 0o644))
	mine := filepath.Join(dir, Dir, "notes.txt")
	require.NoError(t, os.WriteFile(mine, []byte("mine"), 0o644))

	require.NoError(t, Write(dir, "damper.wasm"))
	info, err := os.Stat(index)
	require.NoError(t, err)
	assert.Equal(t, old, info.ModTime(), "an unchanged file is not rewritten")
	assert.NoFileExists(t, stale)
	assert.FileExists(t, mine)

	require.NoError(t, Write(dir, "other.wasm"))
	info, err = os.Stat(index)
	require.NoError(t, err)
	assert.NotEqual(t, old, info.ModTime(), "a changed file is")
}
