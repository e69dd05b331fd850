package local

import (
	"strconv"
	"sync"

	"github.com/damperdev/damper/runtime/event"
)

// Event is one event of a run, as the agent instance's event log holds it
// and the SSE streams send it (package event).
type Event = event.Envelope

// feed is a live agent instance's events as they are appended: the newest
// ones in a ring, a channel closed at every append for the streams that
// wait, and the listeners of runs (Run's OnEvent). A stream reads the
// ring while it covers what the stream needs, and the database before.
type feed struct {
	mu        sync.Mutex
	ring      []frame // the newest events, in seq order, at most size
	size      int
	next      chan struct{} // closed at the next append
	closed    bool
	listeners map[string]func(Event) // by run
}

func newFeed(size int) *feed {
	return &feed{size: size, next: make(chan struct{}), listeners: map[string]func(Event){}}
}

// publish is the event log's OnAppend: envs are in seq order, and
// publishes come in seq order (appends take turns).
func (f *feed) publish(envs []event.Envelope) {
	// Each event is encoded once, for every stream.
	frames := make([]frame, len(envs))
	for i := range envs {
		frames[i] = frame{env: envs[i], sse: sseFrame(nil, &envs[i])}
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	if n := len(f.ring); n > 0 && f.ring[n-1].env.Seq+1 != envs[0].Seq {
		// Another process appended to the same database: the ring would
		// have a gap, so it starts again from here.
		f.ring = f.ring[:0]
	}
	if over := len(f.ring) + len(frames) - f.size; over > 0 {
		if over >= len(f.ring) {
			f.ring = f.ring[:0]
			if len(frames) > f.size {
				frames = frames[len(frames)-f.size:]
			}
		} else {
			n := copy(f.ring, f.ring[over:])
			f.ring = f.ring[:n]
		}
	}
	f.ring = append(f.ring, frames...)
	close(f.next)
	f.next = make(chan struct{})
	var calls []func(Event)
	var evs []Event
	for _, e := range envs {
		if fn := f.listeners[e.Run]; fn != nil {
			calls, evs = append(calls, fn), append(evs, e)
		}
	}
	f.mu.Unlock()
	// Outside the lock, still in the appending goroutine: in order.
	for i, fn := range calls {
		fn(evs[i])
	}
}

// since returns the events after seq after (only run's when run is set)
// that the ring holds, and the channel closed at the next append. ok is
// false when the ring may not hold every event after seq after (it starts
// later, or is empty): the caller reads the database, having taken next
// first, so that nothing appended meanwhile goes unseen. closed says the
// feed has ended (its agent instance was deleted or retired).
func (f *feed) since(after int64, run string) (evs []frame, next <-chan struct{}, ok, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	next = f.next
	if f.closed {
		return nil, next, true, true
	}
	if len(f.ring) == 0 || f.ring[0].env.Seq > after+1 {
		return nil, next, false, false
	}
	// The ring is contiguous: seq after+1 is at index after+1-first.
	i := max(int(after+1-f.ring[0].env.Seq), 0)
	for _, e := range f.ring[min(i, len(f.ring)):] {
		if run == "" || e.env.Run == run {
			evs = append(evs, e)
		}
	}
	return evs, next, true, false
}

// frame is an event and its SSE encoding.
type frame struct {
	env event.Envelope
	sse []byte
}

// sseFrame appends e as one SSE event: id (its seq), event (its type),
// data (its JSON, one line: JSON escapes line breaks).
func sseFrame(b []byte, e *event.Envelope) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, "\nevent: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	b = e.AppendJSON(b)
	return append(b, "\n\n"...)
}

func (f *feed) listen(run string, fn func(Event)) {
	f.mu.Lock()
	f.listeners[run] = fn
	f.mu.Unlock()
}

func (f *feed) unlisten(run string) {
	f.mu.Lock()
	delete(f.listeners, run)
	f.mu.Unlock()
}

// close ends the feed: streams waiting on it wake and end.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.next)
	}
}
