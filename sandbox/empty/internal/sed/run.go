package sed

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// File is one input of a run.
type File struct {
	Name string
	Data []byte
}

// Env is what a run reaches outside the program.
type Env struct {
	// Out receives the output.
	Out io.Writer
	// Read reads the file of r and R.
	Read func(name string) ([]byte, error)
	// Create opens the file of w and s///w, once per name per run.
	Create func(name string) (io.Writer, error)
	// Step is called for every cycle and command, to bound the run.
	Step func()
}

// maxSpace bounds the pattern and hold spaces: the module's memory is the
// sandbox's.
const maxSpace = 16 << 20

// ErrNoPrevRegex is the empty regex // before any regex was used.
var ErrNoPrevRegex = errors.New("no previous regular expression")

type state struct {
	prog      *Program
	env       Env
	quiet     bool
	lines     []string
	files     []int // the file index of each line (for F)
	names     []string
	trail     bool // the last line of the input ended with a newline
	next      int  // index of the next line to read
	lineNo    int
	ps, hs    string
	tflag     bool
	queue     []string // a and r output, after the cycle
	lastRx    *regexp.Regexp
	writers   map[string]io.Writer
	rfiles    map[string][]string // R: the lines left of each file
	out       []byte
	quit      bool
	code      int
	missingNL bool // the output owes a newline (see emit)
}

// Run runs the program over files (as one stream of lines, as sed does
// without -s) and returns the exit code q or Q gave (0 otherwise).
func (prog *Program) Run(files []File, quiet bool, env Env) (int, error) {
	s := &state{prog: prog, env: env, quiet: quiet, writers: map[string]io.Writer{}, rfiles: map[string][]string{}}
	if s.env.Step == nil {
		s.env.Step = func() {}
	}
	for i, f := range files {
		data := string(f.Data)
		if data == "" {
			continue
		}
		s.trail = strings.HasSuffix(data, "\n")
		ls := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
		s.lines = append(s.lines, ls...)
		for range ls {
			s.files = append(s.files, i)
		}
		s.names = append(s.names, f.Name)
	}
	for i := len(s.names); i < len(files); i++ {
		s.names = append(s.names, files[i].Name)
	}
	for !s.quit && s.next < len(s.lines) {
		s.env.Step()
		if len(s.out) > 64<<10 {
			if err := s.flush(); err != nil {
				return 1, err
			}
		}
		s.ps = s.lines[s.next]
		s.next++
		s.lineNo++
		s.tflag = false
		if err := s.cycle(); err != nil {
			s.flush()
			return 1, err
		}
	}
	return s.code, s.flush()
}

func (s *state) flush() error {
	_, err := s.env.Out.Write(s.out)
	s.out = s.out[:0]
	return err
}

func (s *state) isLast() bool { return s.next >= len(s.lines) }

// emit writes a line of output. Output of the last line of an input
// that does not end in a newline does not either, as with GNU sed;
// anything printed after it adds the newline first (writeNL).
func (s *state) emit(text string) {
	s.writeNL()
	s.out = append(s.out, text...)
	if s.isLast() && !s.trail {
		s.missingNL = true
		return
	}
	s.out = append(s.out, '\n')
}

// writeNL is not inlined: at its 12 call sites it was 3 KB gzip of the
// module.
//
//go:noinline
func (s *state) writeNL() {
	if s.missingNL {
		s.out = append(s.out, '\n')
		s.missingNL = false
	}
}

func (s *state) cycle() error {
	pc := 0
	cmds := s.prog.cmds
	for pc < len(cmds) {
		s.env.Step()
		c := cmds[pc]
		ok, err := s.selected(c)
		if err != nil {
			return err
		}
		if !ok {
			if c.name == '{' {
				pc = c.blockTo + 1
				continue
			}
			pc++
			continue
		}
		pc++
		if len(s.ps) > maxSpace || len(s.hs) > maxSpace {
			return fmt.Errorf("the pattern or hold space passed %d bytes", maxSpace)
		}
		switch c.name {
		case '{', '}', ':':
		case '=':
			s.writeNL()
			s.out = append(s.out, strconv.Itoa(s.lineNo)+"\n"...)
		case 'a':
			s.queue = append(s.queue, c.text+"\n")
		case 'i':
			s.writeNL()
			s.out = append(s.out, c.text+"\n"...)
		case 'c':
			// With a range, the text replaces the range's last line.
			if c.a2.kind == addrNone || !c.inRange || c.negate {
				s.writeNL()
				s.out = append(s.out, c.text+"\n"...)
			}
			return s.endCycle(false)
		case 'b':
			if c.text == "" {
				return s.endCycle(true)
			}
			pc = s.prog.labels[c.text]
		case 't', 'T':
			if s.tflag == (c.name == 't') {
				s.tflag = false
				if c.text == "" {
					return s.endCycle(true)
				}
				pc = s.prog.labels[c.text]
			}
		case 'd':
			return s.endCycle(false)
		case 'D':
			i := strings.IndexByte(s.ps, '\n')
			if i < 0 {
				return s.endCycle(false)
			}
			s.ps = s.ps[i+1:]
			s.flushQueue()
			pc = 0
			continue
		case 'g':
			s.ps = s.hs
		case 'G':
			s.ps += "\n" + s.hs
		case 'h':
			s.hs = s.ps
		case 'H':
			s.hs += "\n" + s.ps
		case 'x':
			s.ps, s.hs = s.hs, s.ps
		case 'z':
			s.ps = ""
		case 'l':
			s.writeNL()
			s.out = append(s.out, listLine(s.ps)+"\n"...)
		case 'F':
			s.writeNL()
			name := "-"
			if f := s.files[s.next-1]; f < len(s.names) {
				name = s.names[f]
			}
			s.out = append(s.out, name+"\n"...)
		case 'n':
			if s.quitAtEOF() {
				return s.endCycle(true)
			}
			if !s.quiet {
				s.emit(s.ps)
			}
			s.flushQueue()
			s.ps = s.lines[s.next]
			s.next++
			s.lineNo++
		case 'N':
			if s.quitAtEOF() {
				// GNU prints the pattern space when N finds no next line.
				return s.endCycle(true)
			}
			s.flushQueue()
			s.ps += "\n" + s.lines[s.next]
			s.next++
			s.lineNo++
		case 'p':
			s.writeNL()
			s.emit(s.ps)
		case 'P':
			s.writeNL()
			first, _, _ := strings.Cut(s.ps, "\n")
			s.out = append(s.out, first+"\n"...)
		case 'q':
			s.quit, s.code = true, c.code
			return s.endCycle(true)
		case 'Q':
			s.quit, s.code = true, c.code
			s.queue = nil
			return nil
		case 'r':
			b, err := s.env.Read(c.text)
			if err == nil && len(b) > 0 {
				t := string(b)
				if !strings.HasSuffix(t, "\n") {
					t += "\n"
				}
				s.queue = append(s.queue, t)
			}
		case 'R':
			ls, ok := s.rfiles[c.text]
			if !ok {
				if b, err := s.env.Read(c.text); err == nil && len(b) > 0 {
					ls = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
				}
			}
			if len(ls) > 0 {
				s.queue = append(s.queue, ls[0]+"\n")
				ls = ls[1:]
			}
			s.rfiles[c.text] = ls
		case 'w', 'W':
			text := s.ps
			if c.name == 'W' {
				text, _, _ = strings.Cut(text, "\n")
			}
			if err := s.writeFile(c.text, text); err != nil {
				return err
			}
		case 's':
			if err := s.subst(c); err != nil {
				return err
			}
		case 'y':
			s.ps = strings.Map(func(r rune) rune {
				if t, ok := c.y[r]; ok {
					return t
				}
				return r
			}, s.ps)
		}
	}
	return s.endCycle(true)
}

// quitAtEOF handles n and N on the last line: sed ends (printing the
// pattern space unless -n).
func (s *state) quitAtEOF() bool {
	if s.next < len(s.lines) {
		return false
	}
	s.quit = true
	return true
}

func (s *state) endCycle(print bool) error {
	if print && !s.quiet {
		s.writeNL()
		s.emit(s.ps)
	}
	s.flushQueue()
	return nil
}

func (s *state) flushQueue() {
	for _, q := range s.queue {
		s.writeNL()
		s.out = append(s.out, q...)
	}
	s.queue = s.queue[:0]
}

func (s *state) writeFile(name, text string) error {
	if name == "/dev/stdout" {
		s.writeNL()
		s.out = append(s.out, text+"\n"...)
		return nil
	}
	w, ok := s.writers[name]
	if !ok {
		var err error
		if w, err = s.env.Create(name); err != nil {
			return fmt.Errorf("couldn't open file %s: %w", name, err)
		}
		s.writers[name] = w
	}
	_, err := io.WriteString(w, text+"\n")
	return err
}

// selected reports whether c applies to the current line, moving its
// range along.
func (s *state) selected(c *command) (bool, error) {
	if c.a1.kind == addrNone {
		return !c.negate, nil
	}
	var ok bool
	if c.a2.kind == addrNone {
		m, err := s.matches(c.a1)
		if err != nil {
			return false, err
		}
		ok = m
	} else {
		m, err := s.inRange(c)
		if err != nil {
			return false, err
		}
		ok = m
	}
	return ok != c.negate, nil
}

func (s *state) inRange(c *command) (bool, error) {
	if c.inRange {
		end := false
		switch c.a2.kind {
		case addrLine:
			end = s.lineNo >= c.a2.n
			if s.lineNo > c.a2.n {
				c.inRange = false
				return false, nil
			}
		case addrPlus:
			end = s.lineNo >= c.rangeEnd
		case addrMult:
			end = c.a2.n <= 0 || s.lineNo%c.a2.n == 0
		default:
			m, err := s.matches(c.a2)
			if err != nil {
				return false, err
			}
			end = m
		}
		if end {
			c.inRange = false
		}
		return true, nil
	}
	start := false
	if c.a1.kind == addrZero {
		start = s.lineNo == 1
		if start {
			// 0,/re/ may end on line 1 itself.
			m, err := s.matches(c.a2)
			if err != nil {
				return false, err
			}
			if !m {
				c.inRange = true
			}
			return true, nil
		}
		return false, nil
	}
	m, err := s.matches(c.a1)
	if err != nil || !m {
		return false, err
	}
	start = true
	switch c.a2.kind {
	case addrLine:
		c.inRange = c.a2.n > s.lineNo
	case addrPlus:
		c.rangeEnd = s.lineNo + c.a2.n
		c.inRange = c.a2.n > 0
	case addrMult:
		c.inRange = c.a2.n > 0 && s.lineNo%c.a2.n != 0
	case addrLast:
		c.inRange = !s.isLast()
	default:
		c.inRange = true
	}
	return start, nil
}

func (s *state) matches(a address) (bool, error) {
	switch a.kind {
	case addrLine:
		return s.lineNo == a.n, nil
	case addrLast:
		return s.isLast(), nil
	case addrStep:
		if a.step <= 0 {
			return s.lineNo == a.n, nil
		}
		return s.lineNo >= a.n && (s.lineNo-a.n)%a.step == 0, nil
	case addrRegex:
		rx := a.rx
		if a.empty {
			if s.lastRx == nil {
				return false, ErrNoPrevRegex
			}
			rx = s.lastRx
		}
		s.lastRx = rx
		return rx.MatchString(s.ps), nil
	}
	return false, nil
}

func (s *state) subst(c *command) error {
	rx := c.rx
	if c.emptyRx {
		if s.lastRx == nil {
			return ErrNoPrevRegex
		}
		rx = s.lastRx
	}
	s.lastRx = rx
	// A search costs steps by its length, so that a loop over a growing
	// pattern space runs out of steps rather than out of time.
	for range len(s.ps) >> 6 {
		s.env.Step()
	}
	if len(s.ps) > maxSpace {
		return fmt.Errorf("the pattern space passed %d bytes", maxSpace)
	}
	// Matches are found over the whole pattern space, so that ^, \b and
	// the like see where each match really is; empty matches next to a
	// previous match are skipped, as sed does.
	all := rx.FindAllStringSubmatchIndex(s.ps, -1)
	var out []byte
	last, did := 0, false
	for i, m := range all {
		n := i + 1
		switch {
		case c.nth > 0 && n < c.nth:
			continue
		case !c.global && n > max(c.nth, 1):
		default:
			out = append(out, s.ps[last:m[0]]...)
			out = append(out, expandRepl(c.repl, s.ps, m)...)
			last, did = m[1], true
			continue
		}
		break
	}
	if !did {
		return nil
	}
	out = append(out, s.ps[last:]...)
	s.ps = string(out)
	s.tflag = true
	for i := 0; i < c.print; i++ {
		s.writeNL()
		s.emit(s.ps)
	}
	if c.wfile != "" {
		return s.writeFile(c.wfile, s.ps)
	}
	return nil
}

// expandRepl builds one replacement for the match m in src.
func expandRepl(parts []replPart, src string, m []int) string {
	var b []byte
	var conv byte    // L or U: until \E
	var oneConv byte // l or u: the next character
	add := func(t string) {
		for _, r := range t {
			switch {
			case oneConv == 'u':
				r = unicode.ToUpper(r)
				oneConv = 0
			case oneConv == 'l':
				r = unicode.ToLower(r)
				oneConv = 0
			case conv == 'U':
				r = unicode.ToUpper(r)
			case conv == 'L':
				r = unicode.ToLower(r)
			}
			b = utf8.AppendRune(b, r)
		}
	}
	for _, p := range parts {
		switch {
		case p.conv != 0:
			switch p.conv {
			case 'L', 'U':
				conv, oneConv = p.conv, 0
			case 'E':
				conv, oneConv = 0, 0
			default:
				oneConv = p.conv
			}
		case p.group >= 0:
			if 2*p.group+1 < len(m) && m[2*p.group] >= 0 {
				add(src[m[2*p.group]:m[2*p.group+1]])
			}
		default:
			add(p.lit)
		}
	}
	return string(b)
}

// listLine prints the pattern space as l does: escapes, and $ at the end.
func listLine(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			b = append(b, `\\`...)
		case '\a':
			b = append(b, `\a`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		case '\v':
			b = append(b, `\v`...)
		default:
			if c < 32 || c >= 127 {
				b = fmt.Appendf(b, "\\%03o", c)
			} else {
				b = append(b, c)
			}
		}
	}
	return string(b) + "$"
}
