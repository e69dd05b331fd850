package local

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// cpuTime is the CPU time this process has used (user and system): on a
// shared machine, a cost that the load around it does not inflate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the CPU time per op since start.
func reportCPU(b *testing.B, start time.Duration, per float64, unit string) {
	b.ReportMetric(float64(cpuTime()-start)/per/1e3, "cpu-µs/"+unit)
}

// BenchmarkEventsOfOneRun is event append on the local host, through the
// module: runs of probe.emit emitting 1,000 events each (Emit posts them;
// the host appends each emit effect and commits them in groups), every
// event committed at the run's end. One op is one event.
func BenchmarkEventsOfOneRun(b *testing.B) {
	h := newHost(b, testConfig(b).WithLogger(nil))
	run(b, h, "probe.emit", "bench", map[string]any{"events": 1})
	const per = 1000
	b.ResetTimer()
	cpu := cpuTime()
	for n := 0; n < b.N; n += per {
		run(b, h, "probe.emit", "bench", map[string]any{"events": min(per, b.N-n)})
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	reportCPU(b, cpu, float64(b.N), "event")
}

// BenchmarkSSEFanout is one run's events streamed to 100 SSE readers of
// its agent instance (real HTTP on loopback): from the run's start until
// every reader has read its last event. One op is one event; events/s is
// what each reader receives, deliveries/s all readers together.
func BenchmarkSSEFanout(b *testing.B) {
	const readers = 100
	h := newHost(b, testConfig(b).WithLogger(nil))
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	run(b, h, "probe.emit", "fan", map[string]any{"events": 1})
	// Every reader starts after what is there: the events of the run to come.
	after := len(runEvents(b, h, "probe.emit", "fan"))
	transport := &http.Transport{MaxConnsPerHost: readers + 8, MaxIdleConnsPerHost: readers + 8}
	client := &http.Client{Transport: transport}
	defer transport.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := b.N
	want := after + 1 + events + 2 // run.start, the deltas, log, run.finish
	var (
		ready sync.WaitGroup
		done  sync.WaitGroup
		errs  = make(chan error, readers)
	)
	for range readers {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/agents/probe.emit/fan/events?after=%d", srv.URL, after), nil)
			resp, err := client.Do(req)
			if err != nil {
				ready.Done()
				errs <- err
				return
			}
			defer resp.Body.Close()
			ready.Done()
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if line := sc.Text(); strings.HasPrefix(line, "id: ") && line == fmt.Sprintf("id: %d", want) {
					return
				}
			}
			errs <- fmt.Errorf("stream ended early: %v", sc.Err())
		}()
	}
	ready.Wait()
	b.ResetTimer()
	cpu := cpuTime()
	run(b, h, "probe.emit", "fan", map[string]any{"events": events})
	done.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(events*readers)/b.Elapsed().Seconds(), "deliveries/s")
	reportCPU(b, cpu, float64(events), "event")
}

// runEvents reads the agent instance's whole log.
func runEvents(tb testing.TB, h *Host, agent, id string) []Event {
	tb.Helper()
	h.mu.Lock()
	ai := h.instances[instanceKey{agent, id}]
	h.mu.Unlock()
	require.NotNil(tb, ai)
	evs, err := ai.inst.ReadEvents(context.Background(), 0, "", 1<<20)
	require.NoError(tb, err)
	return evs
}

// BenchmarkTurn is one model turn of a tool-using harness, as probe.triage
// emits it (9 events: turn start and finish, a thinking and two text
// deltas, a tool call with its shell command), with the events persisted
// (Persisted) and with the log's writes left out (Discarded): the
// difference is what persisting costs a turn. One op is one turn.
func BenchmarkTurn(b *testing.B) {
	for _, bc := range []struct {
		name    string
		discard bool
	}{{"Persisted", false}, {"Discarded", true}} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := testConfig(b).WithLogger(nil)
			cfg.discardEvents = bc.discard
			h := newHost(b, cfg)
			run(b, h, "probe.triage", "turn", map[string]any{"turns": 1})
			const per = 100
			b.ResetTimer()
			cpu := cpuTime()
			for n := 0; n < b.N; n += per {
				run(b, h, "probe.triage", "turn", map[string]any{"turns": min(per, b.N-n)})
			}
			b.StopTimer()
			reportCPU(b, cpu, float64(b.N), "turn")
		})
	}
}
