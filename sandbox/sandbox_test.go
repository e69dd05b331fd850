package sandbox

import (
	"context"
	"errors"
	"io/fs"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestErrorsRefineIOFS(t *testing.T) {
	tests := []struct {
		err  error
		is   []error
		isnt []error
	}{
		{err: ErrEscape, is: []error{fs.ErrPermission}, isnt: []error{fs.ErrInvalid, fs.ErrNotExist}},
		{err: ErrNotText, is: []error{fs.ErrInvalid}, isnt: []error{fs.ErrPermission}},
		{err: ErrIsDir, isnt: []error{fs.ErrInvalid, fs.ErrExist}},
		{err: ErrNotDir, isnt: []error{fs.ErrInvalid, fs.ErrNotExist}},
		{err: ErrTooLarge, isnt: []error{fs.ErrInvalid}},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			wrapped := &fs.PathError{Op: "open", Path: "x", Err: tt.err}
			assert.ErrorIs(t, wrapped, tt.err)
			for _, e := range tt.is {
				assert.ErrorIs(t, wrapped, e)
			}
			for _, e := range tt.isnt {
				assert.NotErrorIs(t, wrapped, e)
			}
		})
	}
}

func TestChooseKind(t *testing.T) {
	assert.Equal(t, KindEmpty, chooseKind("", ""), "no choice: empty")
	assert.Equal(t, KindContainer, chooseKind(KindContainer, ""))
	assert.Equal(t, KindLocal, chooseKind(KindContainer, KindLocal), "the host's override wins")
	assert.Equal(t, KindEmpty, chooseKind(KindLocal, KindEmpty))
}

func TestOpenUnlinkedKind(t *testing.T) {
	_, err := Open(context.Background(), Container())
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "import github.com/damperdev/damper/sandbox/container")

	_, err = Open(context.Background(), Spec{Kind: "vm"})
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), `"vm"`)
}

func TestRegisterKind(t *testing.T) {
	const kind Kind = "test-kind"
	boom := errors.New("boom")
	RegisterKind(kind, func(ctx context.Context, spec Spec) (Sandbox, error) {
		assert.Equal(t, kind, spec.Kind)
		assert.EqualValues(t, 7, spec.Limits.MaxFiles, "the limits reach the opener")
		return nil, boom
	})
	t.Cleanup(func() {
		kindsMu.Lock()
		delete(kinds, kind)
		kindsMu.Unlock()
	})
	_, err := Open(context.Background(), Spec{Kind: kind, Limits: Limits{MaxFiles: 7}})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, "sandbox: open test-kind: boom", err.Error())

	assert.Panics(t, func() { RegisterKind(kind, func(context.Context, Spec) (Sandbox, error) { return nil, nil }) }, "twice")
	assert.Panics(t, func() { RegisterKind("other", nil) }, "nil opener")
}

// TestSurfaceLinksNoKind holds the package boundary that keeps the shell's
// cost out of agents that do not use it: importing the surface (as tools
// do) links no kind and no interpreter, and the agent API links no
// sandbox at all.
func TestSurfaceLinksNoKind(t *testing.T) {
	deps := func(pkg string) []string {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		require.NoError(t, err, "go list -deps %s", pkg)
		return strings.Fields(string(out))
	}
	for _, d := range deps("github.com/damperdev/damper/sandbox") {
		assert.NotContains(t, d, "mvdan.cc/sh", "the surface links the shell's parser")
		assert.False(t, strings.HasPrefix(d, "github.com/damperdev/damper/sandbox/"), "the surface imports %s", d)
		// It reads the host's choice of kind through the runtime, which
		// every agent links anyway; nothing else of damper's.
		assert.False(t, strings.HasPrefix(d, "github.com/damperdev/damper/") && !strings.HasPrefix(d, "github.com/damperdev/damper/runtime/") &&
			!strings.HasPrefix(d, "github.com/damperdev/damper/internal/wire") && d != "github.com/damperdev/damper/sandbox",
			"the surface imports %s", d)
	}
	for _, d := range deps("github.com/damperdev/damper/runtime/agent") {
		assert.False(t, strings.HasPrefix(d, "github.com/damperdev/damper/sandbox"), "runtime/agent links %s", d)
	}
	assert.Contains(t, deps("github.com/damperdev/damper/sandbox/empty"), "mvdan.cc/sh/v3/syntax", "the empty kind is where the shell is")
}
