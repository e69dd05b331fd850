package local

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDBPathsNeverCollideWithoutCase(t *testing.T) {
	names := []string{"foo", "Foo", "FOO", "fOo", "_foo", "__foo", "_Foo", "f_oo", "f__oo", "F_oo", "a.b-c", "A.B-C", "_", "__", "x_y", "x_Y"}
	seen := map[string]string{}
	for _, n := range names {
		require.True(t, ValidName(n), n)
		p := strings.ToLower(dbPath("/data", "agent", n))
		if other, dup := seen[p]; dup {
			t.Fatalf("%q and %q share %s on a case-insensitive file system", n, other, p)
		}
		seen[p] = n
	}
	assert.Equal(t, filepath.Join("/data", "hello", "default.sqlite"), dbPath("/data", "hello", "default"), "lower-case names are unchanged")
	assert.Equal(t, filepath.Join("/data", "_my__agent", "_foo.sqlite"), dbPath("/data", "My_agent", "Foo"))
}

// Each override is logged once when the host starts; one that names no
// service of the module's agents is a warning.
func TestTargetOverridesAreLogged(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := testConfig(t).WithLogger(logger).WithTargets(map[string]string{"api": "http://127.0.0.1:1234/", "typo": "http://127.0.0.1:1"})
	newHost(t, cfg)
	assert.Equal(t, 1, strings.Count(logs.String(), "level=INFO msg=\"target override\" service=api target=http://127.0.0.1:1234\n"), logs.String())
	assert.Contains(t, logs.String(), `level=WARN msg="target override names no service of this module's agents" service=typo`)

	_, err := New(context.Background(), nil, cfg.WithTargets(map[string]string{"api": "ftp://x"}))
	assert.Error(t, err)
}
