package wire_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

var update = flag.Bool("update", false, "rewrite worker/abi.js from the Go constants")

// workerABI is worker/abi.js: the ABI's constants for the Workers host,
// written from the Go ones, so the two hosts cannot drift apart.
func workerABI() []byte {
	var b bytes.Buffer
	b.WriteString("// The module ABI's constants for the Workers host, the same values as\n")
	b.WriteString("// internal/wire's. Generated: edit internal/wire, then run\n")
	b.WriteString("//   go test ./internal/wire -run TestWorkerABI -update\n")
	b.WriteString("// (No cloudflare: imports here: Node loads this file in tests.)\n\n")
	for _, c := range []struct {
		name, doc string
		value     any
	}{
		{"ABI_VERSION", "The ABI version this host speaks.", wire.Version},
		{"EXPORT_ALLOC", "", wire.ExportAlloc},
		{"EXPORT_MANIFEST", "", wire.ExportManifest},
		{"EXPORT_START", "", wire.ExportStart},
		{"EXPORT_RESUME", "", wire.ExportResume},
		{"EXPORT_CANCEL", "", wire.ExportCancel},
		{"MAX_PAYLOAD", "The largest request body of a run, in bytes.", wire.MaxPayload},
		{"MAX_WAITING", "Runs of one agent instance that may wait behind the running one; more answer 429 busy.", wire.MaxWaiting},
		{"MAX_WHOLE_BODY", "A fetch response body returned whole is capped; larger bodies need stream.", wire.MaxWholeBody},
		{"MAX_BODIES_IN_FLIGHT", "Whole-body bytes one agent instance's tasks may hold at once.", wire.MaxBodiesInFlight},
		{"MAX_RESPONSE_HEAD", "A fetch response whose head (status line and header fields) is larger is refused.", wire.MaxResponseHead},
		{"DEFAULT_READ", "A read effect that names no max returns at most this much.", wire.DefaultRead},
		{"MAX_READ", "No read effect returns more.", wire.MaxRead},
		{"MAX_OUTPUT", "An export call that returns more is treated as a trap.", wire.MaxOutput},
		{"MIN_INPUT_BUFFER", "Input buffers from damper_alloc are at least this large, and reused while inputs fit;", wire.MinInputBuffer},
		{"MAX_REUSED_BUFFER", "an input larger than this gets a buffer of its own, released by the next smaller input.", wire.MaxReusedBuffer},
	} {
		if c.doc != "" {
			fmt.Fprintf(&b, "/** %s */\n", c.doc)
		}
		switch v := c.value.(type) {
		case string:
			fmt.Fprintf(&b, "export const %s = %q;\n", c.name, v)
		default:
			fmt.Fprintf(&b, "export const %s = %d;\n", c.name, v)
		}
	}
	return b.Bytes()
}

func TestWorkerABI(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "worker", "abi.js")
	want := workerABI()
	if *update {
		require.NoError(t, os.WriteFile(path, want, 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "worker/abi.js is stale: go test ./internal/wire -run TestWorkerABI -update")
}
