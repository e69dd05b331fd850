package scrub

// MinEncodedLen is the fewest bytes of a text that a Scrubber finds inside
// longer hex or base64 text: 9 bytes are 72 bits, which ordinary text does
// not hold by chance. A shorter text is found hex or base64 encoded only as
// a whole run of hex digits or base64 characters.
const MinEncodedLen = 9

// maxGap is the most line-break bytes (CR, LF) a run of hex or base64 may
// hold between two of its characters and go on: MIME wraps with CRLF,
// PEM with LF.
const maxGap = 2

// ring remembers where the last decoded bytes began in the source.
type ring struct {
	at   []int
	mask int
}

func newRing(n int) ring {
	size := 1
	for size < n+1 {
		size <<= 1
	}
	return ring{at: make([]int, size), mask: size - 1}
}

// textMatcher finds a family's patterns in a view's decoded bytes.
type textMatcher struct {
	f  *family
	st int32
	n  int
	r  ring
}

func (m *textMatcher) put(e *engine, b byte, s, end int) {
	m.st = m.f.step(m.st, b)
	m.r.at[m.n&m.r.mask] = s
	m.n++
	e.ops++
	if p := m.f.best[m.st]; p >= 0 {
		pat := m.f.pats[p]
		e.report(m.r.at[(m.n-pat.n)&m.r.mask], end, pat.sec)
	}
}

func (m *textMatcher) live() int {
	if d := m.f.liveDepth(m.st, 0, 0); d > 0 {
		return m.r.at[(m.n-d)&m.r.mask]
	}
	return -1
}

// Symbol classes of a symMatcher's bytes.
const (
	symOther = -1
	symGap   = -2
	symPad   = -3
)

var hexClass, b64Class [256]int8

func init() {
	for i := range 256 {
		hexClass[i], b64Class[i] = symOther, symOther
	}
	for _, c := range []*[256]int8{&hexClass, &b64Class} {
		c['\r'], c['\n'] = symGap, symGap
	}
	b64Class['='] = symPad
	for i := range 10 {
		hexClass['0'+i] = int8(i)
		b64Class['0'+i] = int8(52 + i)
	}
	for i := range 6 {
		hexClass['a'+i], hexClass['A'+i] = int8(10+i), int8(10+i)
	}
	for i := range 26 {
		b64Class['A'+i], b64Class['a'+i] = int8(i), int8(26+i)
	}
	b64Class['+'], b64Class['-'] = 62, 62
	b64Class['/'], b64Class['_'] = 63, 63
}

// decoder decodes a run of symbols from its first symbol on; a symMatcher
// has one per phase, so that a text is found at any bit offset.
type decoder struct {
	st   int32
	acc  uint32
	nb   uint // bits of acc not yet decoded
	pend int  // where the symbol holding them began
	n    int  // bytes decoded
	r    ring
}

// tail is a match whose last character ends the run so far: it may
// still need the run to end (a short text found only whole), or take the
// padding after it.
type tail struct {
	start, end, sec int
	whole, ext      bool
}

// symMatcher finds a family's patterns hex or base64 encoded in a view's
// decoded bytes: it decodes runs of symbols at every phase (2 for hex, 4
// for base64) and matches the decoded bytes.
type symMatcher struct {
	f     *family
	class *[256]int8
	w     uint // bits per symbol
	ndec  int
	inRun bool
	nsym  int // symbols in the run
	gap   int // line-break bytes since the last symbol
	pads  int // '=' after the run, while tails wait for a second one
	dec   [4]decoder
	tails [4]tail
	nt    int
}

func newSymMatcher(f *family, hex bool) *symMatcher {
	m := &symMatcher{f: f, class: &b64Class, w: 6, ndec: 4}
	if hex {
		m.class, m.w, m.ndec = &hexClass, 4, 2
	}
	for i := range m.ndec {
		m.dec[i].r = newRing(f.maxLen)
	}
	return m
}

func (m *symMatcher) reset() {
	m.inRun, m.nsym, m.gap, m.pads, m.nt = false, 0, 0, 0, 0
}

func (m *symMatcher) put(e *engine, b byte, s, end int) {
	c := m.class[b]
	if m.pads > 0 {
		if c == symPad && m.pads == 1 {
			m.extend(end)
			m.resolve(e)
			return
		}
		m.resolve(e)
	}
	switch {
	case c >= 0:
		if m.inRun {
			m.nt, m.gap = 0, 0 // the run goes on: no tail ends it
		} else {
			m.inRun, m.nsym, m.gap = true, 0, 0
		}
		if m.nsym < m.ndec {
			m.dec[m.nsym] = decoder{r: m.dec[m.nsym].r}
		}
		m.nsym++
		for r := range min(m.nsym, m.ndec) {
			m.decode(e, r, uint32(c), s, end)
		}
	case c == symGap:
		if m.inRun {
			m.gap++
			if m.gap > maxGap {
				m.endRun(e)
			}
		}
	case c == symPad && m.inRun && m.gap == 0 && m.nt > 0:
		m.inRun = false
		m.extend(end)
	default:
		m.endRun(e)
	}
}

func (m *symMatcher) decode(e *engine, r int, v uint32, s, end int) {
	d := &m.dec[r]
	d.acc = (d.acc<<m.w | v) & 0x3fff
	d.nb += m.w
	if d.nb >= 8 {
		d.nb -= 8
		b := byte(d.acc >> d.nb)
		d.st = m.f.step(d.st, b)
		d.r.at[d.n&d.r.mask] = d.pend
		d.n++
		e.ops++
		if p := m.f.best[d.st]; p >= 0 {
			pat := m.f.pats[p]
			whole := pat.n < MinEncodedLen
			if !whole || r == 0 && d.n == pat.n {
				t := tail{start: d.r.at[(d.n-pat.n)&d.r.mask], end: end, sec: pat.sec, whole: whole}
				if !whole {
					e.report(t.start, t.end, t.sec)
				}
				m.tails[m.nt] = t
				m.nt++
			}
		}
	}
	d.pend = s
}

func (m *symMatcher) extend(end int) {
	m.pads++
	for i := range m.nt {
		m.tails[i].end, m.tails[i].ext = end, true
	}
}

// resolve reports the tails once the run has ended.
func (m *symMatcher) resolve(e *engine) {
	for _, t := range m.tails[:m.nt] {
		if t.whole || t.ext {
			e.report(t.start, t.end, t.sec)
		}
	}
	m.nt, m.pads = 0, 0
}

func (m *symMatcher) endRun(e *engine) {
	if m.inRun {
		m.inRun = false
		m.resolve(e)
	}
}

func (m *symMatcher) finish(e *engine) {
	if m.pads > 0 {
		m.resolve(e)
	}
	m.endRun(e)
}

// live is where the earliest match that more bytes could complete may
// begin, or -1.
func (m *symMatcher) live() int {
	at := -1
	for _, t := range m.tails[:m.nt] {
		at = minLive(at, t.start)
	}
	if !m.inRun {
		return at
	}
	for r := range min(m.nsym, m.ndec) {
		d := &m.dec[r]
		switch dp := m.f.liveDepth(d.st, d.acc&(1<<d.nb-1), d.nb); {
		case dp > 0:
			at = minLive(at, d.r.at[(d.n-dp)&d.r.mask])
		case dp == 0:
			at = minLive(at, d.pend)
		}
	}
	return at
}

// minLive is the lesser of two positions, -1 being none.
func minLive(a, b int) int {
	if a < 0 || b >= 0 && b < a {
		return b
	}
	return a
}
