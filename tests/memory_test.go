//go:build linux

package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/wire"
)

// maxPeakRSS is the bound docs/architecture.md ("Memory") promises for the
// load below: the local host's peak resident memory stays under it.
const maxPeakRSS = 1 << 30

// Eight concurrent whole 32 MiB responses on one agent instance, then on a
// second: the host holds at most MaxBodiesInFlight of whole bodies per
// agent instance (the rest fail, saying to stream), drops a module
// instance that grew past its limit after the run, and its peak memory
// stays under maxPeakRSS. Measured on the real `damper serve` process.
func TestMemoryStaysBoundedUnderLargeBodies(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), wire.MaxWholeBody/16)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}))
	defer big.Close()
	h := startLocal(t, token, map[string]string{"DAMPER_TARGETS": "fake=" + big.URL})
	c := &client{h: h, token: token}
	urls := make([]string, 8)
	for i := range urls {
		urls[i] = fmt.Sprintf("%s/%d", big.URL, i)
	}
	payload, err := json.Marshal(map[string]any{"urls": urls, "sizes": true})
	require.NoError(t, err)

	before := peakRSS(t, h.cmd.Process.Pid)
	check := func(id string) {
		res := c.run(t, "probe.batch", id, string(payload))
		whole, refused := 0, 0
		for _, r := range res["responses"].([]any) {
			r := r.(map[string]any)
			switch {
			case r["error"] == "":
				assert.EqualValues(t, len(body), r["bytes"])
				whole++
			default:
				assert.Contains(t, r["error"], "fetch large bodies with stream")
				refused++
			}
		}
		assert.Equal(t, int(wire.MaxBodiesInFlight/wire.MaxWholeBody), whole, "as many whole bodies as the budget holds")
		assert.Equal(t, len(urls)-whole, refused)
	}
	for _, id := range []string{"first", "second", "first"} {
		check(id)
	}
	// And two agent instances at once.
	var wg sync.WaitGroup
	for _, id := range []string{"first", "second"} {
		wg.Go(func() { check(id) })
	}
	wg.Wait()
	peak := peakRSS(t, h.cmd.Process.Pid)
	t.Logf("damper serve peak RSS: %d MiB before, %d MiB after 5 runs of 8 concurrent 32 MiB fetches (the last two at once)", before>>20, peak>>20)
	assert.Less(t, peak, int64(maxPeakRSS), "peak RSS")

	if log, err := os.ReadFile(h.log.Name()); err == nil {
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, "dropped") {
				t.Log(l)
			}
		}
	}
	// The host keeps serving.
	assert.Equal(t, "Hello, after!", c.run(t, "hello", "after", `{"name":"after"}`)["greeting"])
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
