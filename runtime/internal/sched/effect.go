package sched

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/damperdev/damper/internal/wire"
	"github.com/damperdev/damper/internal/wirejson"
)

// EffectError is the failure of an effect as the host reported it, or
// canceled when the task was canceled or its handler returned first.
// errors.Is(err, context.Canceled) holds for the latter.
type EffectError struct {
	Type    string // a wire error type: fetch_error, sql_error, canceled, ...
	Message string
}

func (e *EffectError) Error() string { return e.Type + ": " + e.Message }

// Is reports a canceled effect as context.Canceled.
func (e *EffectError) Is(target error) bool {
	return target == context.Canceled && e.Type == wire.ErrCanceled
}

// errUntracked is what a goroutine the task does not count gets when it
// tries to wait: letting it wait would make the count lie, and the export
// could return a batch while a goroutine of the task still runs.
var errUntracked = errors.New("a goroutine the run does not track cannot wait on the host: start it with Group.Go")

// Perform issues one effect of ctx's task with args (encoded as JSON once,
// here; nil sends none) and waits for its result, decoded into value
// unless value is nil. A failure the host reports is an *EffectError.
//
// Only the handler's goroutine and goroutines started with Group.Go may
// call it.
func Perform(ctx context.Context, typ string, args, value any) error {
	t := FromContext(ctx)
	if t == nil {
		return fmt.Errorf("%s effect: not called inside a run", typ)
	}
	var raw json.RawMessage
	if args != nil {
		var err error
		if raw, err = wirejson.Marshal(args); err != nil {
			return fmt.Errorf("encode %s effect: %w", typ, err)
		}
	}
	return t.perform(typ, raw, value)
}

// Post issues one effect of ctx's task without waiting for it: the effect
// joins the next batch the task hands the host, and its result, failure
// included, is dropped. It saves a goroutine (or a round trip) for an
// effect whose answer no one needs, such as an event sent along with a
// request.
//
// Post right before the same goroutine waits (Perform, Group.Wait): the
// batch then carries both. An effect posted by a task that ends before
// handing the host another batch is never sent.
func Post(ctx context.Context, typ string, args any) error {
	t := FromContext(ctx)
	if t == nil {
		return fmt.Errorf("%s effect: not called inside a run", typ)
	}
	raw, err := wirejson.Marshal(args)
	if err != nil {
		return fmt.Errorf("encode %s effect: %w", typ, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.canceled {
		return &EffectError{Type: wire.ErrCanceled, Message: "the task was canceled"}
	}
	if t.running <= 0 {
		return fmt.Errorf("%s effect: %w", typ, errUntracked)
	}
	t.nextID++
	p := pendingPool.Get().(*pending)
	p.effect, p.posted = wire.Effect{ID: t.nextID, Type: typ, Args: raw}, true
	t.pending = append(t.pending, p)
	return nil
}

func (t *Task) perform(typ string, args json.RawMessage, value any) error {
	t.mu.Lock()
	if t.canceled {
		t.mu.Unlock()
		return &EffectError{Type: wire.ErrCanceled, Message: "the task was canceled"}
	}
	if t.running <= 0 {
		t.mu.Unlock()
		return fmt.Errorf("%s effect: %w", typ, errUntracked)
	}
	t.nextID++
	p := pendingPool.Get().(*pending)
	p.effect = wire.Effect{ID: t.nextID, Type: typ, Args: args}
	// The values wirejson decodes by hand are decoded where the resume
	// carries them, into p's own copy (see Scheduler.decoded).
	switch value.(type) {
	case *wire.FetchValue:
		p.decoded.V = &p.fetch
	case *wire.ReadValue:
		p.decoded.V = &p.read
	}
	t.pending = append(t.pending, p)
	t.blockLocked()
	t.mu.Unlock()

	r := <-p.result
	direct, fetch, read := p.direct, p.fetch, p.read
	*p = pending{result: p.result} // neither the task nor the host holds it any more
	pendingPool.Put(p)
	if r.Error != nil {
		return &EffectError{Type: r.Error.Type, Message: r.Error.Message}
	}
	if value == nil || len(r.Value) == 0 {
		return nil
	}
	if direct && deliver(value, &fetch, &read) {
		return nil
	}
	if err := wirejson.Unmarshal(r.Value, value); err != nil {
		return fmt.Errorf("decode %s result: %w", typ, err)
	}
	return nil
}

// deliver stores the value the resume decoded into value, when value is
// still zero: decoding into a zero value is what the resume did, and
// decoding into anything else might keep some of it.
func deliver(value any, fetch *wire.FetchValue, read *wire.ReadValue) bool {
	switch v := value.(type) {
	case *wire.FetchValue:
		if v.Status != 0 || v.Headers != nil || v.Body != nil || v.Handle != 0 {
			return false
		}
		*v = *fetch
		return true
	case *wire.ReadValue:
		if v.Body != nil || v.EOF {
			return false
		}
		*v = *read
		return true
	}
	return false
}

// pendingPool recycles pending effects, channel included: allocations are
// expensive in Go's wasm code, and a round trip makes few others.
var pendingPool = sync.Pool{New: func() any { return &pending{result: make(chan wire.Result, 1)} }}

// Group starts goroutines that count as goroutines of a task, so their
// effects join the task's batches, and waits for them. Goroutines still
// running when the handler returns are canceled: their effects fail.
type Group struct {
	t *Task

	// Guarded by t.mu.
	active  int
	waiters []chan struct{}
	err     error
}

// NewGroup returns an empty Group of ctx's task. It panics outside a task:
// the agent API only hands out contexts of tasks.
func NewGroup(ctx context.Context) *Group {
	t := FromContext(ctx)
	if t == nil {
		panic("sched: NewGroup outside a task")
	}
	return &Group{t: t}
}

// Go runs f in a new goroutine of the task. A panic in f is recovered: it
// becomes f's error and the error the whole task ends with.
func (g *Group) Go(f func() error) {
	t := g.t
	t.mu.Lock()
	g.active++
	t.live++
	t.wakeLocked()
	t.mu.Unlock()
	go g.run(f)
}

func (g *Group) run(f func() error) {
	var (
		err      error
		returned bool
	)
	defer func() {
		t := g.t
		r := recover()
		t.mu.Lock()
		defer t.mu.Unlock()
		if r != nil {
			p := Panicked(r)
			t.failLocked(p)
			err = errors.New(p.Message)
		} else if !returned {
			err = errors.New("a goroutine of the group exited without returning (runtime.Goexit)")
		}
		if err != nil && g.err == nil {
			g.err = err
		}
		g.active--
		if g.active == 0 {
			for _, w := range g.waiters {
				t.wakeLocked()
				close(w)
			}
			g.waiters = nil
		}
		t.endLocked()
	}()
	err = f()
	returned = true
}

// Wait waits for every goroutine started so far and returns the first
// error one of them returned.
func (g *Group) Wait() error {
	t := g.t
	t.mu.Lock()
	if g.active == 0 {
		defer t.mu.Unlock()
		return g.err
	}
	if t.running <= 0 {
		t.mu.Unlock()
		return fmt.Errorf("group wait: %w", errUntracked)
	}
	w := make(chan struct{})
	g.waiters = append(g.waiters, w)
	t.blockLocked()
	t.mu.Unlock()

	<-w
	t.mu.Lock()
	defer t.mu.Unlock()
	return g.err
}
