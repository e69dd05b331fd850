//go:build !wasip1

package abi

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

// drive calls an export as a host does: alloc, write, call, read the
// packed output.
func drive(t *testing.T, export func(ptr, n uint32) uint64, input string) wire.Output {
	t.Helper()
	ptr := alloc(uint32(len(input)))
	require.NotZero(t, ptr)
	copy(memoryAt(ptr, uint32(len(input))), input)
	return read(t, export(ptr, uint32(len(input))))
}

func read(t *testing.T, packed uint64) wire.Output {
	t.Helper()
	out := memoryAt(uint32(packed>>32), uint32(packed))
	var o wire.Output
	require.NoError(t, json.Unmarshal(out, &o), "output %q", out)
	return o
}

func TestExports(t *testing.T) {
	out := drive(t, start, `{"task":"t1","kind":"run","agent":"nobody","instance":"i","run":"r"}`)
	assert.Equal(t, wire.Output{Task: "t1", Done: true, Error: &wire.Error{Type: wire.ErrUnknownAgent, Status: 404, Message: `no agent named "nobody"; this module has no agents`}}, out)

	out = drive(t, resume, `{"task":"t1","results":[]}`)
	assert.Equal(t, wire.ErrBadTask, out.Error.Type, "the task is over")
	out = drive(t, cancel, `{"task":"t1"}`)
	assert.Equal(t, wire.ErrBadTask, out.Error.Type)
}

// A host may pass input after input in the buffer alloc handed out, until
// it asks for another.
func TestInputBufferIsReused(t *testing.T) {
	first := `{"task":"t2","kind":"run","agent":"nobody","instance":"i","run":"r"}`
	ptr := alloc(uint32(len(first)))
	copy(memoryAt(ptr, uint32(len(first))), first)
	out := read(t, start(ptr, uint32(len(first))))
	assert.Equal(t, wire.ErrUnknownAgent, out.Error.Type)
	second := `{"task":"t2"}`
	copy(memoryAt(ptr, uint32(len(second))), second)
	out = read(t, cancel(ptr, uint32(len(second))))
	assert.Equal(t, "t2", out.Task)
	assert.Equal(t, wire.ErrBadTask, out.Error.Type, "the task is over")
	assert.NotContains(t, out.Error.Message, "pass a buffer from damper_alloc")
}

func TestExportsNeverTrustThePointer(t *testing.T) {
	released := alloc(4)
	ptr := alloc(4)
	copy(memoryAt(ptr, 4), "null")
	for _, tc := range []struct {
		name   string
		ptr, n uint32
	}{
		{"not a buffer alloc handed out", ptr + 1, 4},
		{"longer than the buffer", ptr, 5},
		{"released by a later alloc", released, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := read(t, start(tc.ptr, tc.n))
			assert.True(t, out.Done)
			assert.Equal(t, wire.ErrBadTask, out.Error.Type)
			assert.Contains(t, out.Error.Message, "pass a buffer from damper_alloc")
		})
	}
	assert.Zero(t, alloc(maxInput+1), "an impossible size gets no buffer")
	empty := alloc(0)
	assert.NotZero(t, empty, "an empty input still gets an address")
	in, ok := take(empty, 0)
	assert.True(t, ok)
	assert.Equal(t, []byte{}, in)
}

func TestManifestExport(t *testing.T) {
	packed := manifest()
	var m wire.Manifest
	require.NoError(t, json.Unmarshal(memoryAt(uint32(packed>>32), uint32(packed)), &m))
	assert.Equal(t, wire.Version, m.ABI)
}

func TestABIOverride(t *testing.T) {
	defer func(v string) { abiOverride = v }(abiOverride)
	for override, want := range map[string]int{"": wire.Version, "99": 99, "1": 1, "x": 0} {
		abiOverride = override
		assert.Equal(t, want, version(), "override %q", override)
	}
}

func TestExportNamesAreTheWireNames(t *testing.T) {
	src, err := os.ReadFile("exports_wasip1.go")
	require.NoError(t, err)
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^//go:wasmexport (\S+)$`).FindAllStringSubmatch(string(src), -1) {
		names = append(names, m[1])
	}
	assert.ElementsMatch(t, []string{wire.ExportAlloc, wire.ExportManifest, wire.ExportStart, wire.ExportResume, wire.ExportCancel}, names)
}
