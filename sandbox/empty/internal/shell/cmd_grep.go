package shell

import (
	"bytes"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/damperdev/damper/sandbox/empty/internal/posixre"
)

func init() {
	commands["grep"] = cmdGrep
	commands["egrep"] = func(p *proc) int { p.args = append([]string{"-E"}, p.args...); return cmdGrep(p) }
	commands["fgrep"] = func(p *proc) int { p.args = append([]string{"-F"}, p.args...); return cmdGrep(p) }
}

var grepLong = map[string]byte{
	"recursive": 'r', "dereference-recursive": 'R', "line-number": 'n', "ignore-case": 'i', "files-with-matches": 'l',
	"files-without-match": 'L', "invert-match": 'v', "extended-regexp": 'E', "fixed-strings": 'F', "basic-regexp": 'G',
	"count": 'c', "only-matching": 'o', "word-regexp": 'w', "line-regexp": 'x', "quiet": 'q', "silent": 'q',
	"no-messages": 's', "no-filename": 'h', "with-filename": 'H', "regexp": 'e', "file": 'f', "after-context": 'A',
	"before-context": 'B', "context": 'C', "max-count": 'm', "include": 'I', "exclude": 'X', "exclude-dir": 'D',
	"color": 'K', "colour": 'K', "perl-regexp": 'P', "text": 'a', "null": 'Z', "byte-offset": 'b', "initial-tab": 'T',
}

// grepOpts is how grep was asked to match and print.
type grepOpts struct {
	invert, count, only, quiet, names, listNo, number, text bool
	maxCount, after, before                                 int
	rx                                                      *regexp.Regexp
	include, exclude, excludeDir                            []string
}

func cmdGrep(p *proc) int {
	args := p.args
	// -NUM is -C NUM.
	for i, a := range args {
		if len(a) > 1 && a[0] == '-' && isDigit(a[1]) && digitRun(a[1:]) == len(a)-1 {
			args = append(append(append([]string(nil), args[:i]...), "-C", a[1:]), args[i+1:]...)
			break
		}
	}
	f, err := p.parseFlags(args, "rRnilLvEFGcowxqshHPaZbTUz", "efABCmIXDK", grepLong, true)
	if err != nil {
		p.errorf("%s\nUsage: grep [OPTION]... PATTERNS [FILE]...", err)
		return 2
	}
	var pats []string
	pats = append(pats, f.vals['e']...)
	for _, file := range f.vals['f'] {
		b, err := p.read(file)
		if err != nil {
			p.errorf("%s: %s", file, errText(err))
			return 2
		}
		for _, l := range lines(b) {
			pats = append(pats, string(l))
		}
	}
	rest := f.rest
	if len(f.vals['e']) == 0 && len(f.vals['f']) == 0 {
		if len(rest) == 0 {
			p.errorf("Usage: grep [OPTION]... PATTERNS [FILE]...")
			return 2
		}
		pats = append(pats, strings.Split(rest[0], "\n")...)
		rest = rest[1:]
	}
	o := grepOpts{
		invert: f.has('v'), count: f.has('c'), only: f.has('o'), quiet: f.has('q'), listNo: f.has('L'),
		number: f.has('n'), text: f.has('a'), maxCount: -1,
		include: f.vals['I'], exclude: f.vals['X'], excludeDir: f.vals['D'],
	}
	if f.has('l') {
		o.names = true
	}
	for _, c := range []byte("ABC") {
		if v, ok := f.val(c); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				p.errorf("%s: invalid context length argument", v)
				return 2
			}
			switch c {
			case 'A':
				o.after = n
			case 'B':
				o.before = n
			default:
				o.after, o.before = n, n
			}
		}
	}
	if v, ok := f.val('m'); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			p.errorf("invalid max count")
			return 2
		}
		o.maxCount = n
	}
	ere := f.has('E') || f.has('P')
	var parts []string
	for _, pat := range pats {
		var s string
		switch {
		case f.has('F'):
			s = regexp.QuoteMeta(pat)
		case f.has('P'):
			s = pat
		default:
			s, err = posixre.Translate(pat, ere)
			if err != nil {
				p.errorf("%s", err)
				return 2
			}
		}
		if f.has('x') {
			s = "^(?:" + s + ")$"
		} else if f.has('w') {
			s = `(?:^|\b)(?:` + s + `)(?:\b|$)`
		}
		parts = append(parts, "(?:"+s+")")
	}
	expr := strings.Join(parts, "|")
	if f.has('i') {
		expr = "(?i)" + expr
	}
	rx, err := regexp.Compile(expr)
	if err != nil {
		p.errorf("invalid regular expression: %s", err)
		return 2
	}
	rx.Longest()
	o.rx = rx

	recursive := f.has('r') || f.has('R')
	implicitDot := false // grep -r PAT names what it finds without "./"
	if len(rest) == 0 && recursive {
		rest, implicitDot = []string{"."}, true
	}
	multi := len(rest) > 1 || recursive
	withNames := (multi || f.has('H')) && !f.has('h')
	matched, failed := false, false
	var search func(name, display string)
	search = func(name, display string) {
		p.step()
		if name == "-" {
			data, _ := p.read("-")
			if p.grepData(&o, data, "(standard input)", withNames) {
				matched = true
			}
			return
		}
		in, t, err := p.r.stat(name)
		if err != nil {
			if !f.has('s') {
				p.errorf("%s: %s", display, errText(err))
			}
			failed = true
			return
		}
		if in.IsDir() {
			if !recursive {
				if !f.has('s') {
					p.errorf("%s: Is a directory", display)
				}
				failed = true
				return
			}
			entries, err := t.fs.ReadDir(t.rel)
			if err != nil {
				failed = true
				return
			}
			for _, e := range entries {
				child := path.Join(name, e.Name())
				childDisplay := display + "/" + e.Name()
				switch {
				case display == "." && implicitDot:
					childDisplay = e.Name()
				case strings.HasSuffix(display, "/"):
					childDisplay = display + e.Name()
				}
				if e.IsDir() {
					if matchAny(o.excludeDir, e.Name()) {
						continue
					}
				} else {
					if len(o.include) > 0 && !matchAny(o.include, e.Name()) || matchAny(o.exclude, e.Name()) {
						continue
					}
				}
				search(child, childDisplay)
			}
			return
		}
		data, err := p.r.readFile(name)
		if err != nil {
			p.errorf("%s: %s", display, errText(err))
			failed = true
			return
		}
		if p.grepData(&o, data, display, withNames) {
			matched = true
		}
	}
	if len(rest) == 0 {
		rest = []string{"-"}
	}
	for _, name := range rest {
		if o.quiet && matched {
			break
		}
		search(name, name)
	}
	switch {
	case o.quiet && matched:
		return 0
	case failed:
		return 2
	case matched:
		return 0
	}
	return 1
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// grepData searches one file's content and prints what grep prints for it;
// it reports whether the file had a selected line.
func (p *proc) grepData(o *grepOpts, data []byte, name string, withNames bool) bool {
	binary := !o.text && bytes.IndexByte(data, 0) >= 0
	ls := lines(data)
	var b []byte
	prefix := func(n int, sep byte) {
		if withNames {
			b = append(b, name...)
			b = append(b, sep)
		}
		if o.number {
			b = append(b, strconv.Itoa(n)...)
			b = append(b, sep)
		}
	}
	count := 0
	lastPrinted := -1
	pendingAfter := 0
	for i, l := range ls {
		if i&63 == 0 {
			p.step()
		}
		if o.maxCount >= 0 && count >= o.maxCount {
			// Trailing context still prints after the last match.
			if pendingAfter > 0 && !o.count && !o.names && !o.listNo && !o.quiet {
				prefix(i+1, '-')
				b = append(b, l...)
				b = append(b, '\n')
				lastPrinted = i
				pendingAfter--
				continue
			}
			break
		}
		hit := o.rx.Match(l) != o.invert
		if !hit {
			if pendingAfter > 0 && !o.count && !o.names && !o.listNo && !o.quiet && !binary {
				prefix(i+1, '-')
				b = append(b, l...)
				b = append(b, '\n')
				lastPrinted = i
				pendingAfter--
			}
			continue
		}
		count++
		if o.quiet || o.names || o.listNo || o.count || binary {
			if o.quiet || o.names || o.listNo {
				break
			}
			continue
		}
		if o.before > 0 || o.after > 0 {
			start := max(lastPrinted+1, i-o.before)
			if lastPrinted >= 0 && start > lastPrinted+1 {
				b = append(b, "--\n"...)
			}
			for j := start; j < i; j++ {
				prefix(j+1, '-')
				b = append(b, ls[j]...)
				b = append(b, '\n')
			}
		}
		if o.only && !o.invert {
			for _, m := range o.rx.FindAllIndex(l, -1) {
				if m[0] == m[1] {
					continue
				}
				prefix(i+1, ':')
				b = append(b, l[m[0]:m[1]]...)
				b = append(b, '\n')
			}
		} else if !o.only {
			prefix(i+1, ':')
			b = append(b, l...)
			b = append(b, '\n')
		}
		lastPrinted = i
		pendingAfter = o.after
	}
	switch {
	case o.quiet:
	case o.listNo:
		if count == 0 {
			b = append(b, name+"\n"...)
		}
	case o.names:
		if count > 0 {
			b = append(b, name+"\n"...)
		}
	case o.count:
		if withNames {
			b = append(b, name+":"...)
		}
		b = append(b, strconv.Itoa(count)+"\n"...)
	case binary && count > 0:
		p.write(string(b))
		fmt.Fprintf(p.out, "Binary file %s matches\n", name)
		return true
	}
	p.write(string(b))
	return count > 0
}
