package shell

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

func init() {
	for name, c := range map[string]command{
		"head": cmdHead, "tail": cmdTail, "wc": cmdWc, "sort": cmdSort, "uniq": cmdUniq, "cut": cmdCut,
		"tr": cmdTr, "tee": cmdTee, "rev": cmdRev, "tac": cmdTac, "nl": cmdNl, "paste": cmdPaste,
		"comm": cmdComm, "fold": cmdFold, "column": cmdColumn,
	} {
		commands[name] = c
	}
}

// countArg parses head's and tail's -n: a count, maybe signed, with an
// optional multiplier suffix.
func countArg(s string) (n int, sign byte, ok bool) {
	if s == "" {
		return 0, 0, false
	}
	if s[0] == '+' || s[0] == '-' {
		sign, s = s[0], s[1:]
	}
	mult := 1
	for suf, m := range map[string]int{"k": 1024, "K": 1024, "kB": 1000, "M": 1 << 20, "MB": 1000000, "b": 512} {
		if strings.HasSuffix(s, suf) && len(s) > len(suf) {
			if _, err := strconv.Atoi(s[:len(s)-len(suf)]); err == nil {
				s, mult = s[:len(s)-len(suf)], m
				break
			}
		}
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, 0, false
	}
	return v * mult, sign, true
}

// legacyCount turns head -5 into head -n 5.
func legacyCount(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if len(a) > 1 && a[0] == '-' && a[1] >= '0' && a[1] <= '9' && (i == 0 || args[i-1] != "-n" && args[i-1] != "-c") {
			out = append(out, "-n", a[1:])
			continue
		}
		out = append(out, a)
	}
	return out
}

func cmdHead(p *proc) int {
	f, err := p.parseFlags(legacyCount(p.args), "qvz", "nc", map[string]byte{"lines": 'n', "bytes": 'c', "quiet": 'q', "silent": 'q', "verbose": 'v'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	n, sign, byBytes := 10, byte(0), false
	if v, ok := f.val('n'); ok {
		var good bool
		if n, sign, good = countArg(v); !good {
			p.errorf("invalid number of lines: '%s'", v)
			return 1
		}
	}
	if v, ok := f.val('c'); ok {
		var good bool
		if n, sign, good = countArg(v); !good {
			p.errorf("invalid number of bytes: '%s'", v)
			return 1
		}
		byBytes = true
	}
	headers := len(f.rest) > 1 && !f.has('q') || f.has('v')
	first := true
	if byBytes && sign == 0 {
		// head -c N /dev/zero reads N bytes of an endless device.
		p.readSize = n
	}
	return p.inputs(f.rest, func(name string, data []byte) error {
		var b bytes.Buffer
		if headers {
			if !first {
				b.WriteByte('\n')
			}
			if name == "-" {
				name = "standard input"
			}
			fmt.Fprintf(&b, "==> %s <==\n", name)
		}
		first = false
		switch {
		case byBytes && sign == '-':
			b.Write(data[:max(0, len(data)-n)])
		case byBytes:
			b.Write(data[:min(n, len(data))])
		case sign == '-':
			ls := strings.SplitAfter(string(data), "\n")
			if ls[len(ls)-1] == "" {
				ls = ls[:len(ls)-1]
			}
			b.WriteString(strings.Join(ls[:max(0, len(ls)-n)], ""))
		default:
			end, count := 0, 0
			for end < len(data) && count < n {
				p.step()
				i := bytes.IndexByte(data[end:], '\n')
				if i < 0 {
					end = len(data)
					break
				}
				end += i + 1
				count++
			}
			b.Write(data[:end])
		}
		return p.writeBytes(b.Bytes())
	})
}

func cmdTail(p *proc) int {
	f, err := p.parseFlags(legacyCount(p.args), "qvzfFr", "ncs", map[string]byte{"lines": 'n', "bytes": 'c', "quiet": 'q', "follow": 'f', "verbose": 'v'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	if f.has('f') || f.has('F') {
		p.errorf("warning: following is not supported here; printing what the file holds")
	}
	n, sign, byBytes := 10, byte(0), false
	if v, ok := f.val('n'); ok {
		var good bool
		if n, sign, good = countArg(v); !good {
			p.errorf("invalid number of lines: '%s'", v)
			return 1
		}
	}
	if v, ok := f.val('c'); ok {
		var good bool
		if n, sign, good = countArg(v); !good {
			p.errorf("invalid number of bytes: '%s'", v)
			return 1
		}
		byBytes = true
	}
	headers := len(f.rest) > 1 && !f.has('q') || f.has('v')
	first := true
	return p.inputs(f.rest, func(name string, data []byte) error {
		var b bytes.Buffer
		if headers {
			if !first {
				b.WriteByte('\n')
			}
			if name == "-" {
				name = "standard input"
			}
			fmt.Fprintf(&b, "==> %s <==\n", name)
		}
		first = false
		switch {
		case byBytes && sign == '+':
			b.Write(data[min(len(data), max(0, n-1)):])
		case byBytes:
			b.Write(data[max(0, len(data)-n):])
		default:
			ls := strings.SplitAfter(string(data), "\n")
			if ls[len(ls)-1] == "" {
				ls = ls[:len(ls)-1]
			}
			if f.has('r') {
				slices.Reverse(ls)
				if len(ls) > 0 && !strings.HasSuffix(ls[0], "\n") {
					ls[0] += "\n"
					last := len(ls) - 1
					ls[last] = strings.TrimSuffix(ls[last], "\n")
				}
				b.WriteString(strings.Join(ls[:min(n, len(ls))], ""))
				break
			}
			if sign == '+' {
				b.WriteString(strings.Join(ls[min(len(ls), max(0, n-1)):], ""))
			} else {
				b.WriteString(strings.Join(ls[max(0, len(ls)-n):], ""))
			}
		}
		return p.writeBytes(b.Bytes())
	})
}

func cmdWc(p *proc) int {
	f, err := p.parseFlags(p.args, "lwcmL", "", map[string]byte{"lines": 'l', "words": 'w', "bytes": 'c', "chars": 'm', "max-line-length": 'L'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	show := []byte{}
	for _, c := range []byte("lwmcL") {
		if f.has(c) {
			show = append(show, c)
		}
	}
	if len(show) == 0 {
		show = []byte("lwc")
	}
	type counts map[byte]int
	var rows []counts
	var names []string
	total := counts{}
	totalSize := 0
	status := p.inputs(f.rest, func(name string, data []byte) error {
		c := counts{'l': bytes.Count(data, []byte{'\n'}), 'c': len(data), 'm': utf8.RuneCount(data)}
		if name != "-" {
			totalSize += len(data)
		}
		words, inWord, longest, cur := 0, false, 0, 0
		for i, r := 0, rune(0); i < len(data); {
			var size int
			r, size = utf8.DecodeRune(data[i:])
			i += size
			if r == '\n' {
				longest, cur = max(longest, cur), 0
			} else if r == '\t' {
				cur = cur + 8 - cur%8
			} else {
				cur++
			}
			if unicode.IsSpace(r) {
				inWord = false
			} else if !inWord {
				inWord = true
				words++
			}
		}
		c['w'], c['L'] = words, max(longest, cur)
		rows = append(rows, c)
		names = append(names, name)
		for k, v := range c {
			if k == 'L' {
				total[k] = max(total[k], v)
			} else {
				total[k] += v
			}
		}
		return nil
	})
	if len(rows) > 1 {
		rows = append(rows, total)
		names = append(names, "total")
	}
	// GNU wc pads every count to the width of the inputs' total size, at
	// least 7 wide for standard input, except one count of one input.
	width := 1
	if len(show) > 1 || len(names) > 1 {
		for _, n := range names {
			if n == "-" {
				width = 7
			}
		}
		width = max(width, len(strconv.Itoa(totalSize)))
	}
	var b []byte
	for i, r := range rows {
		parts := make([]string, 0, len(show)+1)
		for _, k := range show {
			parts = append(parts, fmt.Sprintf("%*d", width, r[k]))
		}
		line := strings.Join(parts, " ")
		if names[i] != "-" {
			line += " " + names[i]
		}
		b = append(b, line+"\n"...)
	}
	p.write(string(b))
	return status
}

// sortKey is one -k field range of sort.
type sortKey struct {
	startField, startChar int
	endField, endChar     int
	opts                  string // the key's own ordering options (n, r, f, b, ...)
}

func parseSortKey(s string) (sortKey, bool) {
	var k sortKey
	start, end, hasEnd := strings.Cut(s, ",")
	parse := func(pos string) (field, char int, opts string, ok bool) {
		i := 0
		for i < len(pos) && pos[i] >= '0' && pos[i] <= '9' {
			i++
		}
		field, err := strconv.Atoi(pos[:i])
		if err != nil {
			return 0, 0, "", false
		}
		rest := pos[i:]
		if strings.HasPrefix(rest, ".") {
			j := 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			char, _ = strconv.Atoi(rest[1:j])
			rest = rest[j:]
		}
		return field, char, rest, true
	}
	var ok bool
	var o1, o2 string
	if k.startField, k.startChar, o1, ok = parse(start); !ok || k.startField < 1 {
		return k, false
	}
	if hasEnd {
		if k.endField, k.endChar, o2, ok = parse(end); !ok {
			return k, false
		}
	}
	k.opts = o1 + o2
	return k, true
}

func cmdSort(p *proc) int {
	f, err := p.parseFlags(p.args, "nrufbdhiVcCsMgRz", "ktoS", map[string]byte{"numeric-sort": 'n', "reverse": 'r', "unique": 'u', "ignore-case": 'f', "key": 'k', "field-separator": 't', "output": 'o', "human-numeric-sort": 'h', "version-sort": 'V', "stable": 's', "check": 'c', "general-numeric-sort": 'g', "ignore-leading-blanks": 'b'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	sep := ""
	if v, ok := f.val('t'); ok {
		sep = v
		if v == `\t` {
			sep = "\t"
		}
		if len(sep) != 1 {
			p.errorf("multi-character tab '%s'", v)
			return 2
		}
	}
	var keys []sortKey
	for _, v := range f.vals['k'] {
		k, ok := parseSortKey(v)
		if !ok {
			p.errorf("invalid field specification '%s'", v)
			return 2
		}
		keys = append(keys, k)
	}
	global := ""
	for _, c := range "nrfbdhVgMR" {
		if f.has(byte(c)) {
			global += string(c)
		}
	}
	var all []string
	status := p.inputs(f.rest, func(_ string, data []byte) error {
		for _, l := range lines(data) {
			all = append(all, string(l))
		}
		return nil
	})
	if status != 0 {
		return 2
	}
	compare := func(a, b string) int {
		if len(keys) == 0 {
			return compareBy(a, b, global)
		}
		for _, k := range keys {
			opts := k.opts
			if opts == "" {
				opts = global
			}
			if c := compareBy(sortField(a, k, sep, strings.Contains(opts, "b")), sortField(b, k, sep, strings.Contains(opts, "b")), opts); c != 0 {
				return c
			}
		}
		return 0
	}
	full := func(a, b string) int {
		if c := compare(a, b); c != 0 || f.has('s') || f.has('u') {
			return c
		}
		// The last resort compares whole lines, bytewise, as GNU sort does.
		c := strings.Compare(a, b)
		if strings.Contains(global, "r") {
			c = -c
		}
		return c
	}
	if f.has('c') || f.has('C') {
		for i := 1; i < len(all); i++ {
			if c := full(all[i-1], all[i]); c > 0 || c == 0 && f.has('u') {
				if f.has('c') {
					p.errorf("-:%d: disorder: %s", i+1, all[i])
				}
				return 1
			}
		}
		return 0
	}
	for range len(all) / 64 {
		p.step()
	}
	slices.SortStableFunc(all, full)
	if f.has('u') {
		out := all[:0]
		for i, l := range all {
			if i == 0 || compare(all[i-1], l) != 0 {
				out = append(out, l)
			}
		}
		all = out
	}
	var b []byte
	for _, l := range all {
		b = append(b, l...)
		b = append(b, '\n')
	}
	if o, ok := f.val('o'); ok {
		w, msg := p.r.openWrite(o, false, false)
		if msg != "" {
			p.errorf("%s", msg)
			return 2
		}
		if _, err := w.Write([]byte(string(b))); err != nil {
			p.errorf("%s: %s", o, errText(err))
			return 2
		}
		return 0
	}
	if p.write(string(b)) != nil {
		return 2
	}
	return 0
}

// sortField extracts key k of line: fields split by sep, or by runs of
// blanks that stay at the start of each field when sep is empty.
func sortField(line string, k sortKey, sep string, skipBlanks bool) string {
	var starts, ends []int
	if sep != "" {
		pos := 0
		for {
			starts = append(starts, pos)
			i := strings.Index(line[pos:], sep)
			if i < 0 {
				ends = append(ends, len(line))
				break
			}
			ends = append(ends, pos+i)
			pos += i + len(sep)
		}
	} else {
		i := 0
		for i < len(line) {
			s := i
			for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
				i++
			}
			for i < len(line) && line[i] != ' ' && line[i] != '\t' {
				i++
			}
			starts, ends = append(starts, s), append(ends, i)
		}
	}
	fieldStart := func(n, char int) int {
		if n > len(starts) {
			return len(line)
		}
		s := starts[n-1]
		if skipBlanks || sep == "" && char > 0 {
			for s < ends[n-1] && (line[s] == ' ' || line[s] == '\t') {
				s++
			}
		}
		if char > 0 {
			s = min(s+char-1, ends[n-1])
		}
		return s
	}
	start := fieldStart(k.startField, k.startChar)
	end := len(line)
	if k.endField > 0 {
		if k.endField <= len(ends) {
			end = ends[k.endField-1]
			if k.endChar > 0 {
				end = min(fieldStart(k.endField, 0)+k.endChar, ends[k.endField-1])
			}
		}
	}
	if start > end {
		return ""
	}
	s := line[start:end]
	if skipBlanks {
		s = strings.TrimLeft(s, " \t")
	}
	return s
}

// compareBy compares two keys under sort's ordering options.
func compareBy(a, b, opts string) int {
	has := func(c byte) bool { return strings.IndexByte(opts, c) >= 0 }
	if has('b') {
		a, b = strings.TrimLeft(a, " \t"), strings.TrimLeft(b, " \t")
	}
	var c int
	switch {
	case has('n'):
		c = compareNum(leadingNumber(a), leadingNumber(b))
	case has('g'):
		x, _ := strconv.ParseFloat(strings.TrimSpace(a), 64)
		y, _ := strconv.ParseFloat(strings.TrimSpace(b), 64)
		c = compareNum(x, y)
	case has('h'):
		c = compareNum(humanNumber(a), humanNumber(b))
	case has('V'):
		c = compareVersion(a, b)
	case has('M'):
		c = compareNum(float64(monthOf(a)), float64(monthOf(b)))
	default:
		if has('d') {
			a, b = dictOrder(a), dictOrder(b)
		}
		if has('f') {
			a, b = strings.ToUpper(a), strings.ToUpper(b)
		}
		c = strings.Compare(a, b)
	}
	if has('r') {
		c = -c
	}
	return c
}

func compareNum(x, y float64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// leadingNumber is the number a line starts with, as sort -n reads it
// (0 when there is none).
func leadingNumber(s string) float64 {
	s = strings.TrimLeft(s, " \t")
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == ',') {
		i++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s[:i], ",", ""), 64)
	if err != nil {
		return 0
	}
	return v
}

func humanNumber(s string) float64 {
	s = strings.TrimSpace(s)
	v := leadingNumber(s)
	i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.' || r == '-') })
	if i >= 0 {
		if m := strings.IndexByte("KMGTPE", s[i]|0x20-0x20); m >= 0 || s[i] == 'k' {
			if s[i] == 'k' {
				m = 0
			}
			v *= math.Pow(1024, float64(m+1))
		}
	}
	return v
}

func monthOf(s string) int {
	s = strings.ToUpper(strings.TrimSpace(s))
	for i, m := range []string{"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"} {
		if strings.HasPrefix(s, m) {
			return i + 1
		}
	}
	return 0
}

func dictOrder(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || r == '\t' {
			return r
		}
		return -1
	}, s)
}

// compareVersion orders version strings: digit runs numerically.
func compareVersion(a, b string) int {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			i, j := digitRun(a), digitRun(b)
			x, _ := strconv.ParseUint(a[:i], 10, 64)
			y, _ := strconv.ParseUint(b[:j], 10, 64)
			if x != y {
				return compareNum(float64(x), float64(y))
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return strings.Compare(a[:1], b[:1])
		}
		a, b = a[1:], b[1:]
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func cmdUniq(p *proc) int {
	f, err := p.parseFlags(p.args, "cdDuiz", "fsw", map[string]byte{"count": 'c', "repeated": 'd', "unique": 'u', "ignore-case": 'i', "skip-fields": 'f', "skip-chars": 's', "check-chars": 'w'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	skipF, skipC, width := 0, 0, -1
	if v, ok := f.val('f'); ok {
		skipF, _ = strconv.Atoi(v)
	}
	if v, ok := f.val('s'); ok {
		skipC, _ = strconv.Atoi(v)
	}
	if v, ok := f.val('w'); ok {
		width, _ = strconv.Atoi(v)
	}
	key := func(l string) string {
		for i := 0; i < skipF; i++ {
			l = strings.TrimLeft(l, " \t")
			j := strings.IndexAny(l, " \t")
			if j < 0 {
				l = ""
				break
			}
			l = l[j:]
		}
		if skipC < len(l) {
			l = l[skipC:]
		} else {
			l = ""
		}
		if width >= 0 && width < len(l) {
			l = l[:width]
		}
		if f.has('i') {
			l = strings.ToLower(l)
		}
		return l
	}
	var in []byte
	var outName string
	rest := f.rest
	if len(rest) > 2 {
		return p.usage("extra operand '%s'", rest[2])
	}
	if len(rest) == 2 {
		outName, rest = rest[1], rest[:1]
	}
	if st := p.inputs(rest, func(_ string, d []byte) error { in = d; return nil }); st != 0 {
		return st
	}
	var b []byte
	emit := func(line string, n int) {
		switch {
		case f.has('d') && n < 2, f.has('u') && n > 1:
			return
		}
		if f.has('c') {
			b = fmt.Appendf(b, "%7d %s\n", n, line)
		} else {
			b = append(b, line+"\n"...)
		}
	}
	ls := lines(in)
	for i := 0; i < len(ls); {
		p.step()
		j := i + 1
		k := key(string(ls[i]))
		for j < len(ls) && key(string(ls[j])) == k {
			j++
		}
		if f.has('D') {
			if j-i > 1 {
				for x := i; x < j; x++ {
					b = append(b, string(ls[x])+"\n"...)
				}
			}
		} else {
			emit(string(ls[i]), j-i)
		}
		i = j
	}
	if outName != "" {
		w, msg := p.r.openWrite(outName, false, false)
		if msg != "" {
			p.errorf("%s", msg)
			return 1
		}
		w.Write([]byte(string(b)))
		return 0
	}
	p.write(string(b))
	return 0
}

// ranges parses cut's lists: 1,3-5,7- (1-based, inclusive).
func parseRanges(s string) ([][2]int, bool) {
	var out [][2]int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, b := 1, math.MaxInt
		var err error
		if lo != "" {
			if a, err = strconv.Atoi(lo); err != nil || a < 1 {
				return nil, false
			}
		}
		if !isRange {
			b = a
		} else if hi != "" {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, false
			}
		}
		if lo == "" && hi == "" {
			return nil, false
		}
		out = append(out, [2]int{a, b})
	}
	return out, true
}

func inRanges(rs [][2]int, i int) bool {
	for _, r := range rs {
		if i >= r[0] && i <= r[1] {
			return true
		}
	}
	return false
}

func cmdCut(p *proc) int {
	f, err := p.parseFlags(p.args, "snz", "dfcb", map[string]byte{"delimiter": 'd', "fields": 'f', "characters": 'c', "bytes": 'b', "only-delimited": 's', "output-delimiter": 'O', "complement": 'C'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	delim := "\t"
	if v, ok := f.val('d'); ok {
		if utf8.RuneCountInString(v) != 1 {
			return p.usage("the delimiter must be a single character")
		}
		delim = v
	}
	outDelim := delim
	if v, ok := f.val('O'); ok {
		outDelim = v
	}
	var list string
	mode := byte(0)
	for _, c := range []byte("fcb") {
		if v, ok := f.val(c); ok {
			if mode != 0 {
				return p.usage("only one type of list may be specified")
			}
			mode, list = c, v
		}
	}
	if mode == 0 {
		return p.usage("you must specify a list of bytes, characters, or fields")
	}
	rs, ok := parseRanges(list)
	if !ok {
		p.errorf("invalid field value '%s'", list)
		return 1
	}
	complement := f.has('C')
	return p.inputs(f.rest, func(_ string, data []byte) error {
		var b []byte
		for _, line := range lines(data) {
			p.step()
			l := string(line)
			switch mode {
			case 'f':
				if !strings.Contains(l, delim) {
					if !f.has('s') {
						b = append(b, l+"\n"...)
					}
					continue
				}
				fields := strings.Split(l, delim)
				var keep []string
				for i, fl := range fields {
					if inRanges(rs, i+1) != complement {
						keep = append(keep, fl)
					}
				}
				b = append(b, strings.Join(keep, outDelim)+"\n"...)
			case 'c':
				i := 0
				for _, r := range l {
					i++
					if inRanges(rs, i) != complement {
						b = utf8.AppendRune(b, r)
					}
				}
				b = append(b, "\n"...)
			default:
				for i := 0; i < len(l); i++ {
					if inRanges(rs, i+1) != complement {
						b = append(b, l[i])
					}
				}
				b = append(b, "\n"...)
			}
		}
		return p.write(string(b))
	})
}

// trSet expands a tr set: ranges, classes, escapes.
func trSet(s string) ([]rune, bool) {
	var out []rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		if c == '[' && i+1 < len(rs) && rs[i+1] == ':' {
			end := -1
			for j := i + 2; j+1 < len(rs); j++ {
				if rs[j] == ':' && rs[j+1] == ']' {
					end = j - i
					break
				}
			}
			if end > 0 {
				class := string(rs[i+2 : i+end])
				var set []rune
				for r := rune(0); r < 128; r++ {
					if classMatch(class, r) {
						set = append(set, r)
					}
				}
				if set == nil {
					return nil, false
				}
				out = append(out, set...)
				i += end + 1
				continue
			}
		}
		if c == '[' && i+3 < len(rs) && rs[i+2] == '*' {
			// [c*n] repeats c; [c*] repeats it to fill the set.
			end := i + 3
			for end < len(rs) && rs[end] != ']' {
				end++
			}
			if end < len(rs) {
				n, _ := strconv.Atoi(string(rs[i+3 : end]))
				if n == 0 {
					n = -1
				}
				out = append(out, repeatMarker(rs[i+1], n)...)
				i = end
				continue
			}
		}
		if c == '\\' && i+1 < len(rs) {
			i++
			switch rs[i] {
			case 'n':
				c = '\n'
			case 't':
				c = '\t'
			case 'r':
				c = '\r'
			case '\\':
				c = '\\'
			case 'a':
				c = '\a'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'v':
				c = '\v'
			default:
				if rs[i] >= '0' && rs[i] <= '7' {
					j := i
					for j < len(rs) && j < i+3 && rs[j] >= '0' && rs[j] <= '7' {
						j++
					}
					n, _ := strconv.ParseUint(string(rs[i:j]), 8, 8)
					c = rune(n)
					i = j - 1
				} else {
					c = rs[i]
				}
			}
		}
		if i+2 < len(rs) && rs[i+1] == '-' {
			hi := rs[i+2]
			if hi < c {
				return nil, false
			}
			for r := c; r <= hi; r++ {
				out = append(out, r)
			}
			i += 2
			continue
		}
		out = append(out, c)
	}
	return out, true
}

// repeatMarker stands for [c*n] until the set's length is known: n copies,
// or with n < 0 a marker that fills.
func repeatMarker(c rune, n int) []rune {
	if n < 0 {
		return []rune{-1, c}
	}
	out := make([]rune, n)
	for i := range out {
		out[i] = c
	}
	return out
}

func classMatch(class string, r rune) bool {
	switch class {
	case "alpha":
		return unicode.IsLetter(r)
	case "digit":
		return r >= '0' && r <= '9'
	case "alnum":
		return unicode.IsLetter(r) || r >= '0' && r <= '9'
	case "upper":
		return unicode.IsUpper(r)
	case "lower":
		return unicode.IsLower(r)
	case "space":
		return unicode.IsSpace(r)
	case "blank":
		return r == ' ' || r == '\t'
	case "punct":
		return unicode.IsPunct(r) || unicode.IsSymbol(r)
	case "cntrl":
		return unicode.IsControl(r)
	case "print":
		return unicode.IsPrint(r)
	case "graph":
		return unicode.IsPrint(r) && r != ' '
	case "xdigit":
		return isHex(byte(r)) && r < 128
	}
	return false
}

func cmdTr(p *proc) int {
	args := p.args
	del, squeeze, complement, truncate := false, false, false, false
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' {
		if args[0] == "--" {
			args = args[1:]
			break
		}
		for _, c := range args[0][1:] {
			switch c {
			case 'd':
				del = true
			case 's':
				squeeze = true
			case 'c', 'C':
				complement = true
			case 't':
				truncate = true
			default:
				return p.usage("invalid option -- '%c'", c)
			}
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return p.usage("missing operand")
	}
	set1, ok := trSet(args[0])
	if !ok {
		return p.usage("invalid set '%s'", args[0])
	}
	var set2 []rune
	if len(args) > 1 {
		if set2, ok = trSet(args[1]); !ok {
			return p.usage("invalid set '%s'", args[1])
		}
	}
	if !del && !squeeze && len(args) < 2 {
		return p.usage("missing operand after '%s'", args[0])
	}
	in1 := map[rune]bool{}
	for _, r := range set1 {
		in1[r] = true
	}
	member1 := func(r rune) bool { return in1[r] != complement }
	// Build the translation for set1 -> set2, the last of set2 repeating.
	translate := map[rune]rune{}
	if !del && len(set2) > 0 {
		// Expand a filling [c*] in set2.
		for i := 0; i+1 < len(set2); i++ {
			if set2[i] == -1 {
				fill := len(set1) - (len(set2) - 2)
				set2 = append(set2[:i], append(repeatMarker(set2[i+1], max(fill, 0)), set2[i+2:]...)...)
				break
			}
		}
		if truncate && len(set1) > len(set2) {
			set1 = set1[:len(set2)]
		}
		if complement {
			last := set2[len(set2)-1]
			for r := rune(0); r < 256; r++ {
				if !in1[r] {
					translate[r] = last
				}
			}
		} else {
			for i, r := range set1 {
				if i < len(set2) {
					translate[r] = set2[i]
				} else {
					translate[r] = set2[len(set2)-1]
				}
			}
		}
	}
	squeezeSet := map[rune]bool{}
	if squeeze {
		src := set1
		if len(args) > 1 && !del || len(args) > 1 && del {
			src = set2
		}
		if len(args) == 1 && complement {
			for r := rune(0); r < 256; r++ {
				if !in1[r] {
					squeezeSet[r] = true
				}
			}
		}
		for _, r := range src {
			squeezeSet[r] = true
		}
	}
	var input []byte
	if st := p.inputs(nil, func(_ string, d []byte) error { input = d; return nil }); st != 0 {
		return st
	}
	var b []byte
	last := rune(-2)
	for _, r := range string(input) {
		if del && member1(r) {
			continue
		}
		if !del {
			if t, ok := translate[r]; ok {
				r = t
			}
		}
		if squeeze && squeezeSet[r] && r == last {
			continue
		}
		last = r
		b = utf8.AppendRune(b, r)
	}
	p.write(string(b))
	return 0
}

func cmdTee(p *proc) int {
	f, err := p.parseFlags(p.args, "aip", "", map[string]byte{"append": 'a', "ignore-interrupts": 'i'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	data, _ := p.read("-")
	status := 0
	for _, name := range f.rest {
		w, msg := p.r.openWrite(name, f.has('a'), false)
		if msg != "" {
			p.errorf("%s", msg)
			status = 1
			continue
		}
		if _, err := w.Write(data); err != nil {
			p.errorf("%s: %s", name, errText(err))
			status = 1
		}
	}
	if p.writeBytes(data) != nil {
		return 1
	}
	return status
}

func cmdRev(p *proc) int {
	return p.inputs(p.args, func(_ string, data []byte) error {
		var b []byte
		for _, l := range lines(data) {
			rs := []rune(string(l))
			slices.Reverse(rs)
			b = append(b, string(rs)+"\n"...)
		}
		return p.write(string(b))
	})
}

func cmdTac(p *proc) int {
	return p.inputs(p.args, func(_ string, data []byte) error {
		ls := lines(data)
		var b []byte
		for i := len(ls) - 1; i >= 0; i-- {
			b = append(b, ls[i]...)
			b = append(b, '\n')
		}
		return p.write(string(b))
	})
}

func cmdNl(p *proc) int {
	f, err := p.parseFlags(p.args, "", "bswv", nil, true)
	if err != nil {
		return p.usage("%s", err)
	}
	style := "t"
	if v, ok := f.val('b'); ok {
		style = v
	}
	sep := "\t"
	if v, ok := f.val('s'); ok {
		sep = v
	}
	width := 6
	if v, ok := f.val('w'); ok {
		width, _ = strconv.Atoi(v)
	}
	n := 1
	if v, ok := f.val('v'); ok {
		n, _ = strconv.Atoi(v)
	}
	return p.inputs(f.rest, func(_ string, data []byte) error {
		var b []byte
		for _, l := range lines(data) {
			if style == "a" || style == "t" && len(bytes.TrimSpace(l)) > 0 {
				b = fmt.Appendf(b, "%*d%s%s\n", width, n, sep, l)
				n++
			} else {
				b = fmt.Appendf(b, "%*s%s\n", width+len(sep), "", l)
			}
		}
		return p.write(string(b))
	})
}

func cmdPaste(p *proc) int {
	f, err := p.parseFlags(p.args, "sz", "d", map[string]byte{"delimiters": 'd', "serial": 's'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	delims := []rune{'\t'}
	if v, ok := f.val('d'); ok {
		d, _ := trSet(v)
		if len(d) > 0 {
			delims = d
		} else {
			delims = nil
		}
	}
	names := f.rest
	if len(names) == 0 {
		names = []string{"-"}
	}
	var cols [][][]byte
	stdinUsed := false
	var stdinLines [][]byte
	for _, name := range names {
		if name == "-" {
			if !stdinUsed {
				b, _ := p.read("-")
				stdinLines = lines(b)
				stdinUsed = true
			}
			cols = append(cols, nil) // filled round-robin below
			continue
		}
		b, err := p.read(name)
		if err != nil {
			p.errorf("%s: %s", name, errText(err))
			return 1
		}
		cols = append(cols, lines(b))
	}
	// Several "-" share standard input, taking lines in turn.
	dashes := 0
	for _, name := range names {
		if name == "-" {
			dashes++
		}
	}
	if dashes > 0 {
		k := 0
		for i, name := range names {
			if name != "-" {
				continue
			}
			for j := k; j < len(stdinLines); j += dashes {
				cols[i] = append(cols[i], stdinLines[j])
			}
			k++
		}
	}
	delim := func(i int) string {
		if len(delims) == 0 {
			return ""
		}
		return string(delims[i%len(delims)])
	}
	var b []byte
	if f.has('s') {
		for _, c := range cols {
			for i, l := range c {
				if i > 0 {
					b = append(b, delim(i-1)...)
				}
				b = append(b, l...)
			}
			b = append(b, "\n"...)
		}
		return boolStatus(p.write(string(b)) != nil)
	}
	rows := 0
	for _, c := range cols {
		rows = max(rows, len(c))
	}
	for r := 0; r < rows; r++ {
		for i, c := range cols {
			if i > 0 {
				b = append(b, delim(i-1)...)
			}
			if r < len(c) {
				b = append(b, c[r]...)
			}
		}
		b = append(b, "\n"...)
	}
	return boolStatus(p.write(string(b)) != nil)
}

func boolStatus(failed bool) int {
	if failed {
		return 1
	}
	return 0
}

func cmdComm(p *proc) int {
	f, err := p.parseFlags(p.args, "123i", "", nil, true)
	if err != nil {
		return p.usage("%s", err)
	}
	if len(f.rest) != 2 {
		return p.usage("missing operand")
	}
	a, err := p.read(f.rest[0])
	if err != nil {
		p.errorf("%s: %s", f.rest[0], errText(err))
		return 1
	}
	b2, err := p.read(f.rest[1])
	if err != nil {
		p.errorf("%s: %s", f.rest[1], errText(err))
		return 1
	}
	x, y := lines(a), lines(b2)
	col := func(n int) string {
		prefix := ""
		for i := 1; i < n; i++ {
			if !f.has(byte('0' + i)) {
				prefix += "\t"
			}
		}
		return prefix
	}
	var b []byte
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		var c int
		switch {
		case i >= len(x):
			c = 1
		case j >= len(y):
			c = -1
		default:
			c = bytes.Compare(x[i], y[j])
		}
		switch {
		case c < 0:
			if !f.has('1') {
				b = append(b, col(1)+string(x[i])+"\n"...)
			}
			i++
		case c > 0:
			if !f.has('2') {
				b = append(b, col(2)+string(y[j])+"\n"...)
			}
			j++
		default:
			if !f.has('3') {
				b = append(b, col(3)+string(x[i])+"\n"...)
			}
			i++
			j++
		}
	}
	p.write(string(b))
	return 0
}

func cmdFold(p *proc) int {
	f, err := p.parseFlags(p.args, "sb", "w", nil, true)
	if err != nil {
		return p.usage("%s", err)
	}
	width := 80
	if v, ok := f.val('w'); ok {
		width, _ = strconv.Atoi(v)
		if width < 1 {
			return p.usage("invalid number of columns: '%s'", v)
		}
	}
	return p.inputs(f.rest, func(_ string, data []byte) error {
		var b []byte
		for _, l := range lines(data) {
			rs := []rune(string(l))
			for len(rs) > width {
				cut := width
				if f.has('s') {
					if i := strings.LastIndexAny(string(rs[:width]), " \t"); i >= 0 {
						cut = utf8.RuneCountInString(string(rs[:width])[:i]) + 1
					}
				}
				b = append(b, string(rs[:cut])+"\n"...)
				rs = rs[cut:]
			}
			b = append(b, string(rs)+"\n"...)
		}
		return p.write(string(b))
	})
}

func cmdColumn(p *proc) int {
	f, err := p.parseFlags(p.args, "tn", "so", nil, true)
	if err != nil {
		return p.usage("%s", err)
	}
	var data []byte
	if st := p.inputs(f.rest, func(_ string, d []byte) error { data = append(data, d...); return nil }); st != 0 {
		return st
	}
	if !f.has('t') {
		return boolStatus(p.writeBytes(data) != nil)
	}
	sep, _ := f.val('s')
	outSep, ok := f.val('o')
	if !ok {
		outSep = "  "
	}
	var rows [][]string
	widths := []int{}
	for _, l := range lines(data) {
		var cells []string
		if sep == "" {
			cells = strings.Fields(string(l))
		} else {
			cells = strings.FieldsFunc(string(l), func(r rune) bool { return strings.ContainsRune(sep, r) })
		}
		if len(cells) == 0 {
			continue
		}
		for i, c := range cells {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
		rows = append(rows, cells)
	}
	var b []byte
	for _, cells := range rows {
		for i, c := range cells {
			if i == len(cells)-1 {
				b = append(b, c...)
				break
			}
			b = append(b, c+strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))+outSep...)
		}
		b = append(b, "\n"...)
	}
	sort.Ints(nil)
	return boolStatus(p.write(string(b)) != nil)
}
