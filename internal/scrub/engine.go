package scrub

import (
	"cmp"
	"slices"
)

// cand is a span of the source that holds secret sec.
type cand struct{ start, end, sec int }

// alt reads the text again from inside an escape the view decoded, as a
// decoder that starts there would: "%4" before "A%42" hides the "A" in
// "%4A" from the view, not from a reader who starts at the "A". It matches
// the text family's patterns anchored at its start, and lives while the
// bytes it reads begin one.
type alt struct {
	start  int
	tok    tokenizer
	synced bool // reading the view's own decoded bytes: their tokenizers agree from here on
	dead   bool
	st     int32
	e      *engine
	f      *family
}

func (a *alt) put(b byte, s, end int) {
	if a.dead {
		return
	}
	a.e.ops++
	nx := a.f.step(a.st, b)
	if a.f.depth[nx] != a.f.depth[a.st]+1 {
		a.dead = true
		return
	}
	a.st = nx
	if p := a.f.term[nx]; p >= 0 {
		a.e.report(a.start, end, a.f.pats[p].sec)
	}
	if len(a.f.kids[nx]) == 0 {
		a.dead = true
	}
}

// view is one decoding of the source and the matchers that read it.
type view struct {
	e      *engine
	tok    tokenizer
	text   textMatcher
	hex    *symMatcher // the raw view only: no encoder escapes hex digits
	b64    *symMatcher
	alts   []*alt
	spawns []int // spans [s, e) of escapes decoded by the last byte
	spawnS int   // the start of the last escape recorded
	free   []*alt
	// An escape view sleeps through text it reads as it is (see
	// engine.write); lastEsc is where it last read an escape byte.
	asleep  bool
	lastEsc int
}

// plain reports whether the view reads b as itself, outside an escape.
func (v *view) plain(b byte) bool {
	switch v.tok.kind {
	case viewPercent:
		return b != '%'
	case viewForm:
		return b != '%' && b != '+'
	case viewJSON:
		return b != '\\'
	case viewHTML:
		return b != '&'
	}
	return true
}

// wake readies a sleeping view to read the escape at pos: it reads again,
// from a fresh state, the replay bytes before it, enough for any match
// that may hold the escape to begin there. What it finds in them the raw
// view found already.
func (v *view) wake(pos int) {
	e := v.e
	v.asleep = false
	v.tok = tokenizer{kind: v.tok.kind}
	v.text.st, v.text.n = 0, 0
	v.b64.reset()
	e.replaying = true
	for q := max(pos-e.sc.replay, e.srcBase, 0); q < pos; q++ {
		v.feed(e.src[q-e.srcBase], q)
	}
	e.replaying = false
}

// maySleep reports whether the view has read only plain bytes long enough
// that all it may find from now on, until its next escape, the raw view
// finds too.
func (v *view) maySleep(pos int) bool {
	return pos-v.lastEsc > v.e.sc.replay && v.tok.idle() && len(v.alts) == 0 && v.b64.nt == 0 && v.b64.pads == 0
}

func (v *view) put(b byte, s, end int) {
	e := v.e
	v.text.put(e, b, s, end)
	if v.hex != nil {
		v.hex.put(e, b, s, end)
	}
	v.b64.put(e, b, s, end)
	for _, a := range v.alts {
		if a.synced {
			a.put(b, s, end)
		}
	}
	if end-s > 1 && s != v.spawnS {
		v.spawnS = s
		v.spawns = append(v.spawns, s, end)
	}
}

func (v *view) feed(b byte, pos int) {
	v.tok.feed(b, pos, v)
	if v.tok.kind == viewRaw {
		return
	}
	for _, a := range v.alts {
		if !a.synced && !a.dead {
			a.tok.feed(b, pos, a)
			a.synced = a.tok.idle() && v.tok.idle()
		}
	}
	v.spawn(pos + 1)
	v.sweep()
}

// spawn starts an alt inside each escape just decoded, reading the source
// up to end.
func (v *view) spawn(end int) {
	e := v.e
	for i := 0; i < len(v.spawns); i += 2 {
		for p := v.spawns[i] + 1; p < v.spawns[i+1]; p++ {
			a := v.newAlt(p)
			for q := p; q < end && !a.dead; q++ {
				a.tok.feed(e.src[q-e.srcBase], q, a)
			}
			a.synced = a.tok.idle() && v.tok.idle()
			v.alts = append(v.alts, a)
		}
	}
	v.spawns = v.spawns[:0]
}

func (v *view) newAlt(p int) *alt {
	var a *alt
	if n := len(v.free); n > 0 {
		a = v.free[n-1]
		v.free = v.free[:n-1]
	} else {
		a = &alt{}
	}
	*a = alt{start: p, tok: tokenizer{kind: v.tok.kind}, e: v.e, f: v.e.sc.text}
	return a
}

func (v *view) sweep() {
	alive := v.alts[:0]
	for _, a := range v.alts {
		if a.dead {
			v.free = append(v.free, a)
		} else {
			alive = append(alive, a)
		}
	}
	clear(v.alts[len(alive):])
	v.alts = alive
}

func (v *view) finish(end int) {
	if v.asleep {
		return
	}
	v.tok.finish(end, v)
	for _, a := range v.alts {
		if !a.synced && !a.dead {
			a.tok.finish(end, a)
		}
	}
	e := v.e
	for i := 0; i < len(v.spawns); i += 2 {
		for p := v.spawns[i] + 1; p < v.spawns[i+1]; p++ {
			a := v.newAlt(p)
			for q := p; q < end && !a.dead; q++ {
				a.tok.feed(e.src[q-e.srcBase], q, a)
			}
			a.tok.finish(end, a)
			v.free = append(v.free, a)
		}
	}
	v.spawns = v.spawns[:0]
	if v.hex != nil {
		v.hex.finish(e)
	}
	v.b64.finish(e)
	v.sweep()
	v.free = append(v.free, v.alts...)
	v.alts = v.alts[:0]
}

func (v *view) live() int {
	if v.asleep {
		return -1 // the raw view's matches cover what it may begin
	}
	at := v.tok.pending()
	for _, a := range v.alts {
		at = minLive(at, a.start)
	}
	at = minLive(at, v.text.live())
	if v.hex != nil {
		at = minLive(at, v.hex.live())
	}
	return minLive(at, v.b64.live())
}

// engine scrubs one text, whole or as a stream of chunks: it reads the
// source byte by byte through every view, collects the spans matchers
// report, and hands out the text before the earliest position a match may
// still begin at, with the spans decided there replaced.
type engine struct {
	sc      *Scrubber
	views   [numViews]view
	pos     int    // source bytes read
	src     []byte // source bytes from srcBase on
	srcBase int
	out     []byte
	lazy    bool // out is empty until a redaction: the source is the answer
	emitted int  // source bytes before this are accounted for in out
	settled int  // every span beginning before this has been decided
	lastSec int  // the secret of the redaction out ends with, or -1
	cands   []cand
	ready   []cand
	late    int // spans reported after their start was settled (none, or a bug)
	// replaying drops what a waking view finds (see view.wake).
	replaying bool
	noSleep   bool // for tests: every view reads every byte
	ops       int  // bytes stepped through an automaton: the work done
	// span is how many source bytes at the end of what was read are all of
	// a class a match may hold (spanClass), at most holdBack; gaps how
	// many of them are gaps in a row.
	span, gaps int
}

// passEvery is how often, in source bytes, the engine decides what it can
// within one chunk, so that what it keeps stays bounded.
const passEvery = 4096

func newEngine(sc *Scrubber) *engine {
	e := &engine{sc: sc}
	for k := range numViews {
		v := &e.views[k]
		*v = view{e: e, tok: tokenizer{kind: uint8(k)}, spawnS: -1}
		v.text = textMatcher{f: sc.text, r: newRing(sc.text.maxLen)}
		v.b64 = newSymMatcher(sc.b64, false)
		if k == viewRaw {
			v.hex = newSymMatcher(sc.hex, true)
		}
	}
	e.reset()
	return e
}

func (e *engine) reset() {
	for k := range numViews {
		v := &e.views[k]
		v.tok = tokenizer{kind: uint8(k)}
		v.text.st, v.text.n = 0, 0
		v.b64.reset()
		if v.hex != nil {
			v.hex.reset()
		}
		v.spawns, v.spawnS = v.spawns[:0], -1
		v.asleep, v.lastEsc = false, 0
		v.free = append(v.free, v.alts...)
		v.alts = v.alts[:0]
	}
	e.pos, e.srcBase, e.emitted, e.settled, e.lastSec = 0, 0, 0, 0, -1
	e.src, e.out, e.cands = e.src[:0], e.out[:0], e.cands[:0]
	e.lazy, e.late, e.ops = false, 0, 0
	e.span, e.gaps = 0, 0
}

func (e *engine) report(start, end, sec int) {
	if e.replaying {
		return
	}
	if start < e.settled {
		e.late++
		return
	}
	e.cands = append(e.cands, cand{start, end, sec})
}

// write reads p, which e.src already ends with.
func (e *engine) write(p []byte) {
	for _, b := range p {
		pos := e.pos
		e.views[viewRaw].feed(b, pos)
		// An escape view that has long read only bytes it takes as they are
		// finds nothing the raw view does not: it sleeps until its next
		// escape byte, and then reads again the bytes a match holding the
		// escape could begin with. That costs at most one byte read again
		// per byte slept through.
		for k := viewRaw + 1; k < numViews; k++ {
			v := &e.views[k]
			if !v.plain(b) {
				if v.asleep {
					v.wake(pos)
				}
				v.lastEsc = pos
			} else if v.asleep {
				continue
			}
			v.feed(b, pos)
			if !e.noSleep && v.maySleep(pos) {
				v.asleep = true
			}
		}
		e.pos++
		e.track(b)
		if e.pos%passEvery == 0 {
			e.pass(e.handOut())
		}
	}
	e.pass(e.handOut())
}

// track extends or ends the run of bytes a match may hold (spanClass).
func (e *engine) track(b byte) {
	switch e.sc.span[b] {
	case spanByte:
		e.span, e.gaps = e.span+1, 0
	case spanGap:
		if e.span > 0 && e.gaps < maxGap {
			e.span, e.gaps = e.span+1, e.gaps+1
		} else {
			e.span, e.gaps = 0, 0
		}
	default:
		e.span, e.gaps = 0, 0
	}
	e.span = min(e.span, e.sc.holdBack)
}

// handOut is where a stream's text may be handed out up to: before the
// run of bytes a match may hold that ends what was read (at most holdBack
// of them), whether or not a match does begin there. Where one may begin
// (live) depends on the secrets' values: a hostile origin that sends a
// guess and pauses would learn from what is handed out whether its guess
// begins a secret, and so the secret, a byte at a time. The run depends
// only on the bytes read (and on the secrets' lengths and which unusual
// bytes they hold, through holdBack and spanClass); live is never before
// it, and is kept as a bound only should it be.
func (e *engine) handOut() int {
	return min(e.live(), e.pos-e.span)
}

func (e *engine) finish() {
	for k := range e.views {
		e.views[k].finish(e.pos)
	}
	e.pass(e.pos)
}

// live is where the earliest match that more source may complete begins.
func (e *engine) live() int {
	at := e.pos
	for k := range e.views {
		if l := e.views[k].live(); l >= 0 && l < at {
			at = l
		}
	}
	return at
}

// pass decides every span that begins before upTo (no later byte can
// change those) and hands out the source before upTo.
func (e *engine) pass(upTo int) {
	ready := e.ready[:0]
	rest := e.cands[:0]
	for _, c := range e.cands {
		if c.start < upTo {
			ready = append(ready, c)
		} else {
			rest = append(rest, c)
		}
	}
	e.cands, e.ready = rest, ready
	slices.SortFunc(ready, func(a, b cand) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		if c := cmp.Compare(b.end, a.end); c != 0 {
			return c
		}
		return cmp.Compare(a.sec, b.sec)
	})
	for _, c := range ready {
		switch {
		case c.end <= e.emitted:
			continue // inside what is replaced already
		case c.start < e.emitted:
			if c.sec == e.lastSec { // the same secret again, overlapping: one redaction
				e.emitted = c.end
				continue
			}
			// Another secret: replaced from where the last redaction ends.
		default:
			e.emitSource(c.start)
		}
		if e.lazy {
			e.lazy = false
			e.out = append(e.out[:0], e.src[:e.emitted-e.srcBase]...)
		}
		e.out = append(e.out, e.sc.redactions[c.sec]...)
		e.emitted, e.lastSec = c.end, c.sec
	}
	if upTo > e.emitted {
		e.emitSource(upTo)
	}
	e.settled = max(e.settled, upTo)
	if !e.lazy {
		keep := min(e.emitted, e.settled, e.pos-e.sc.replay) - e.srcBase
		if keep > passEvery && keep > len(e.src)/2 {
			n := copy(e.src, e.src[keep:])
			e.src = e.src[:n]
			e.srcBase += keep
		}
	}
}

func (e *engine) emitSource(to int) {
	if to > e.emitted {
		if !e.lazy {
			e.out = append(e.out, e.src[e.emitted-e.srcBase:to-e.srcBase]...)
		}
		e.emitted, e.lastSec = to, -1
	}
}
