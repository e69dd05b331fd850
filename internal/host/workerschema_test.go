package host

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/runtime/event"
)

var update = flag.Bool("update", false, "rewrite worker/schema.js from the Go definitions")

// workerSchema is worker/schema.js: the host tables' migrations and the
// event log's constants for the Workers host, written from the Go ones, so
// the two hosts keep one schema and one closed set of event types.
func workerSchema() []byte {
	var b bytes.Buffer
	b.WriteString("// The host's tables and the event log's constants for the Workers host,\n")
	b.WriteString("// the same as internal/host's and runtime/event's. Generated: edit those,\n")
	b.WriteString("// then run\n//   go test ./internal/host -run TestWorkerSchema -update\n")
	b.WriteString("// (No cloudflare: imports here: Node loads this file in tests.)\n\n")
	js := func(v any) string {
		out, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return string(out)
	}
	b.WriteString("/** The host tables' migrations, by version (internal/host.HostMigrations). */\n")
	b.WriteString("export const HOST_MIGRATIONS = [\n  null,\n")
	for _, m := range HostMigrations[1:] {
		b.WriteString("  [\n")
		for _, stmt := range m {
			// One line each: the whitespace inside a statement is SQLite's to skip.
			fmt.Fprintf(&b, "    %s,\n", js(strings.Join(strings.Fields(stmt), " ")))
		}
		b.WriteString("  ],\n")
	}
	b.WriteString("];\n")
	types := make([]string, 0, len(event.Types()))
	for _, t := range event.Types() {
		types = append(types, string(t))
	}
	for _, c := range []struct {
		name, doc string
		value     any
	}{
		{"HOST_TABLE_PREFIX", "Every host table's name begins so; a guest statement naming one is refused.", HostTablePrefix},
		{"HOST_TABLES_MESSAGE", "The sql_error for such a statement.", HostTablesMessage},
		{"EVENT_TYPES", "The closed set of event types (runtime/event).", types},
		{"MAX_EVENT_DATA", "An emitted event's data is at most this many bytes.", wire.MaxEventData},
		{"DEFAULT_EVENT_RETENTION", "Events an agent instance's log keeps, the newest.", DefaultEventRetention},
		{"PRUNE_EVERY", "Appends between two prunes of the log.", pruneEvery},
		{"KEEP_RUNS", "Finished runs the ledger keeps, the newest.", keepRuns},
		{"MAX_ATTEMPTS", "A run is started at most this many times.", MaxAttempts},
	} {
		fmt.Fprintf(&b, "/** %s */\nexport const %s = %s;\n", c.doc, c.name, js(c.value))
	}
	return b.Bytes()
}

func TestWorkerSchema(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "worker", "schema.js")
	want := workerSchema()
	if *update {
		require.NoError(t, os.WriteFile(path, want, 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "worker/schema.js is stale: go test ./internal/host -run TestWorkerSchema -update")
}
