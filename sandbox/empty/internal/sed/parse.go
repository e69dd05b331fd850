// Package sed is the empty sandbox's sed: GNU sed's language (addresses,
// ranges, s with its flags, hold space, branches, a/i/c, y, q, w and r)
// over the posixre regular expressions.
package sed

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/damperdev/damper/sandbox/empty/internal/posixre"
)

// Program is a parsed sed script.
type Program struct {
	cmds   []*command
	labels map[string]int
}

type addrKind int

const (
	addrNone  addrKind = iota
	addrLine           // n
	addrLast           // $
	addrRegex          // /re/
	addrStep           // first~step
	addrZero           // 0 (only as 0,/re/)
	addrPlus           // +n (only as the end of a range)
	addrMult           // ~n (only as the end of a range)
)

type address struct {
	kind  addrKind
	n     int
	step  int
	rx    *regexp.Regexp // nil with addrRegex: the last regex used
	empty bool           // the empty regex //, meaning the last one used
}

type command struct {
	a1, a2  address
	negate  bool
	name    byte
	text    string // a, i, c text; label; file name
	code    int    // q, Q exit code
	blockTo int    // for {: the index of its }
	// s
	rx       *regexp.Regexp
	emptyRx  bool
	repl     []replPart
	global   bool
	nth      int
	print    int // p flags (2 means print twice)
	wfile    string
	y        map[rune]rune
	inRange  bool // the range is active
	rangeEnd int  // for +N: the last line of the active range
}

// replPart is a piece of an s replacement: literal text, a group (0 is
// the whole match), or a case conversion (\L \U \l \u \E).
type replPart struct {
	lit   string
	group int
	conv  byte
}

type parser struct {
	s   string
	pos int
	ere bool
}

// Parse parses script; ere selects extended regular expressions (-E).
func Parse(script string, ere bool) (*Program, error) {
	p := &parser{s: script, ere: ere}
	prog := &Program{labels: map[string]int{}}
	var open []int
	for {
		p.skipSpaceAndSeps()
		if p.pos >= len(p.s) {
			break
		}
		if p.peek() == '#' {
			p.skipLine()
			continue
		}
		c, err := p.command()
		if err != nil {
			return nil, err
		}
		switch c.name {
		case '{':
			open = append(open, len(prog.cmds))
		case '}':
			if len(open) == 0 {
				return nil, fmt.Errorf("unexpected `}'")
			}
			if c.a1.kind != addrNone {
				return nil, fmt.Errorf("} doesn't want any addresses")
			}
			start := open[len(open)-1]
			open = open[:len(open)-1]
			prog.cmds[start].blockTo = len(prog.cmds)
		case ':':
			if c.text == "" {
				return nil, fmt.Errorf("\":\" lacks a label")
			}
			prog.labels[c.text] = len(prog.cmds)
		}
		prog.cmds = append(prog.cmds, c)
	}
	if len(open) > 0 {
		return nil, fmt.Errorf("unmatched `{'")
	}
	for _, c := range prog.cmds {
		if (c.name == 'b' || c.name == 't' || c.name == 'T') && c.text != "" {
			if _, ok := prog.labels[c.text]; !ok {
				return nil, fmt.Errorf("can't find label for jump to `%s'", c.text)
			}
		}
	}
	return prog, nil
}

func (p *parser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t') {
		p.pos++
	}
}

func (p *parser) skipSpaceAndSeps() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\n;", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *parser) skipLine() {
	for p.pos < len(p.s) && p.s[p.pos] != '\n' {
		p.pos++
	}
}

func (p *parser) command() (*command, error) {
	c := &command{}
	var err error
	if c.a1, err = p.address(false); err != nil {
		return nil, err
	}
	if c.a1.kind != addrNone && p.peek() == ',' {
		p.pos++
		p.skipSpace()
		if c.a2, err = p.address(true); err != nil {
			return nil, err
		}
		if c.a2.kind == addrNone {
			return nil, fmt.Errorf("unexpected `,'")
		}
	}
	if c.a1.kind == addrZero && (c.a2.kind != addrRegex) {
		return nil, fmt.Errorf("invalid usage of line address 0")
	}
	p.skipSpace()
	for p.peek() == '!' {
		c.negate = true
		p.pos++
		p.skipSpace()
	}
	if p.pos >= len(p.s) {
		return nil, fmt.Errorf("missing command")
	}
	c.name = p.s[p.pos]
	p.pos++
	switch c.name {
	case '{':
		return c, nil
	case '}', '=', 'd', 'D', 'g', 'G', 'h', 'H', 'l', 'n', 'N', 'p', 'P', 'x', 'z', 'F':
		return c, p.end()
	case 'q', 'Q':
		p.skipSpace()
		start := p.pos
		for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
			p.pos++
		}
		if p.pos > start {
			c.code, _ = strconv.Atoi(p.s[start:p.pos])
		}
		return c, p.end()
	case ':':
		p.skipSpace()
		c.text = p.label()
		return c, nil
	case 'b', 't', 'T':
		p.skipSpace()
		c.text = p.label()
		return c, p.end()
	case 'a', 'i', 'c':
		c.text = p.text()
		return c, nil
	case 'r', 'R', 'w', 'W':
		p.skipSpace()
		start := p.pos
		p.skipLine()
		c.text = p.s[start:p.pos]
		if c.text == "" && (c.name == 'w' || c.name == 'W') {
			return nil, fmt.Errorf("missing filename in r/R/w/W commands")
		}
		return c, nil
	case 's':
		return c, p.subst(c)
	case 'y':
		return c, p.translit(c)
	case 'e', 'v':
		p.skipLine()
		if c.name == 'e' {
			return nil, fmt.Errorf("e: running commands from sed is not supported")
		}
		return c, nil
	}
	return nil, fmt.Errorf("unknown command: `%c'", c.name)
}

// end accepts what may follow a command: blanks, then ; } # or a newline.
func (p *parser) end() error {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return nil
	}
	switch p.s[p.pos] {
	case ';', '\n':
		p.pos++
		return nil
	case '}', '#':
		return nil
	}
	return fmt.Errorf("extra characters after command")
}

func (p *parser) label() string {
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] != '\n' && p.s[p.pos] != ';' {
		p.pos++
	}
	return strings.TrimSpace(p.s[start:p.pos])
}

// text reads the text of a, i and c: "a text" (GNU's one-line form) or
// "a\" and lines ending in a backslash to continue.
func (p *parser) text() string {
	p.skipSpace()
	if strings.HasPrefix(p.s[p.pos:], "\\\n") {
		p.pos += 2
	} else if p.peek() == '\\' {
		p.pos++
	}
	var b []byte
	for p.pos < len(p.s) {
		ch := p.s[p.pos]
		if ch == '\\' && p.pos+1 < len(p.s) {
			next := p.s[p.pos+1]
			p.pos += 2
			if next == '\n' {
				b = append(b, '\n')
				continue
			}
			switch next {
			case 't':
				b = append(b, '\t')
			case 'n':
				b = append(b, '\n')
			default:
				b = append(b, next)
			}
			continue
		}
		if ch == '\n' {
			p.pos++
			break
		}
		b = append(b, ch)
		p.pos++
	}
	return string(b)
}

func (p *parser) address(second bool) (address, error) {
	var a address
	switch c := p.peek(); {
	case c >= '0' && c <= '9':
		n := p.number()
		if p.peek() == '~' {
			p.pos++
			step := p.number()
			return address{kind: addrStep, n: n, step: step}, nil
		}
		if n == 0 {
			if second {
				return a, fmt.Errorf("invalid usage of line address 0")
			}
			return address{kind: addrZero}, nil
		}
		return address{kind: addrLine, n: n}, nil
	case c == '$':
		p.pos++
		return address{kind: addrLast}, nil
	case c == '+' && second:
		p.pos++
		return address{kind: addrPlus, n: p.number()}, nil
	case c == '~' && second:
		p.pos++
		return address{kind: addrMult, n: p.number()}, nil
	case c == '/' || c == '\\':
		if c == '\\' {
			p.pos++
		}
		if p.pos >= len(p.s) || p.s[p.pos] == '\n' || p.s[p.pos] == '\\' {
			return a, fmt.Errorf("unexpected end of address")
		}
		delim := p.s[p.pos]
		p.pos++
		expr, err := p.delimited(delim, true)
		if err != nil {
			return a, err
		}
		icase := false
		for p.peek() == 'I' || p.peek() == 'M' {
			icase = icase || p.peek() == 'I'
			p.pos++
		}
		a.kind = addrRegex
		if expr == "" {
			a.empty = true
			return a, nil
		}
		a.rx, err = posixre.Compile(expr, p.ere, icase)
		return a, err
	}
	return a, nil
}

func (p *parser) number() int {
	start := p.pos
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		p.pos++
	}
	n, _ := strconv.Atoi(p.s[start:p.pos])
	return n
}

// delimited reads up to an unescaped delim. In a regex, \delim is delim
// itself and \n a newline; other escapes stay for the regex.
func (p *parser) delimited(delim byte, regex bool) (string, error) {
	var b []byte
	inBracket := false
	for p.pos < len(p.s) {
		c := p.s[p.pos]
		switch {
		case regex && c == '[' && !inBracket:
			inBracket = true
			b = append(b, c)
			p.pos++
			// A ] right after [ or [^ belongs to the set.
			if p.peek() == '^' {
				b = append(b, '^')
				p.pos++
			}
			if p.peek() == ']' {
				b = append(b, ']')
				p.pos++
			}
			continue
		case regex && inBracket && c == ']':
			inBracket = false
		case c == '\\' && p.pos+1 < len(p.s):
			next := p.s[p.pos+1]
			p.pos += 2
			switch {
			case next == delim:
				b = append(b, delim)
			case next == 'n' && !inBracket:
				b = append(b, `\n`...)
			case next == '\n':
				b = append(b, '\n')
			default:
				b = append(b, '\\')
				b = append(b, next)
			}
			continue
		case c == delim && !inBracket:
			p.pos++
			return string(b), nil
		case c == '\n' && regex:
			return "", fmt.Errorf("unterminated address regex")
		}
		b = append(b, c)
		p.pos++
	}
	return "", fmt.Errorf("unterminated `s' command")
}

func (p *parser) subst(c *command) error {
	if p.pos >= len(p.s) {
		return fmt.Errorf("unterminated `s' command")
	}
	delim := p.s[p.pos]
	if delim == '\\' || delim == '\n' {
		return fmt.Errorf("unterminated `s' command")
	}
	p.pos++
	expr, err := p.delimited(delim, true)
	if err != nil {
		return err
	}
	repl, err := p.delimited(delim, false)
	if err != nil {
		return err
	}
	icase := false
	for p.pos < len(p.s) {
		ch := p.s[p.pos]
		switch {
		case ch == 'g':
			c.global = true
		case ch == 'p':
			c.print++
		case ch == 'i' || ch == 'I':
			icase = true
		case ch == 'm' || ch == 'M':
		case ch >= '0' && ch <= '9':
			c.nth = p.number()
			if c.nth == 0 {
				return fmt.Errorf("number option to `s' command may not be zero")
			}
			continue
		case ch == 'w':
			p.pos++
			p.skipSpace()
			start := p.pos
			p.skipLine()
			c.wfile = p.s[start:p.pos]
			goto done
		case ch == 'e':
			return fmt.Errorf("s///e: running commands from sed is not supported")
		default:
			goto done
		}
		p.pos++
	}
done:
	if expr == "" {
		c.emptyRx = true
	} else if c.rx, err = posixre.Compile(expr, p.ere, icase); err != nil {
		return err
	}
	c.repl = parseRepl(repl)
	if c.wfile != "" {
		return nil
	}
	return p.end()
}

// parseRepl splits an s replacement into its parts.
func parseRepl(s string) []replPart {
	var parts []replPart
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			parts = append(parts, replPart{lit: string(lit), group: -1})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '&':
			flush()
			parts = append(parts, replPart{group: 0})
		case c == '\\' && i+1 < len(s):
			i++
			d := s[i]
			switch {
			case d >= '0' && d <= '9':
				flush()
				parts = append(parts, replPart{group: int(d - '0')})
			case d == 'n':
				lit = append(lit, '\n')
			case d == 't':
				lit = append(lit, '\t')
			case d == 'r':
				lit = append(lit, '\r')
			case strings.IndexByte("LUluE", d) >= 0:
				flush()
				parts = append(parts, replPart{group: -1, conv: d})
			default:
				lit = append(lit, d)
			}
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return parts
}

func (p *parser) translit(c *command) error {
	if p.pos >= len(p.s) {
		return fmt.Errorf("unterminated `y' command")
	}
	delim := p.s[p.pos]
	p.pos++
	src, err := p.delimited(delim, false)
	if err != nil {
		return fmt.Errorf("unterminated `y' command")
	}
	dst, err := p.delimited(delim, false)
	if err != nil {
		return fmt.Errorf("unterminated `y' command")
	}
	unescape := func(s string) []rune {
		var out []rune
		rs := []rune(s)
		for i := 0; i < len(rs); i++ {
			if rs[i] == '\\' && i+1 < len(rs) {
				i++
				switch rs[i] {
				case 'n':
					out = append(out, '\n')
				case 't':
					out = append(out, '\t')
				default:
					out = append(out, rs[i])
				}
				continue
			}
			out = append(out, rs[i])
		}
		return out
	}
	a, b := unescape(src), unescape(dst)
	if len(a) != len(b) {
		return fmt.Errorf("strings for `y' command are different lengths")
	}
	c.y = map[rune]rune{}
	for i, r := range a {
		c.y[r] = b[i]
	}
	return p.end()
}
