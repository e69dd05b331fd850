package shell

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

func init() { commands["diff"] = cmdDiff }

// maxEdits bounds the search for a shortest edit script: past it, diff
// reports the rest as replaced whole, which is still a correct diff.
const maxEdits = 2000

type diffOpts struct {
	unified, context             int // lines of context; unified < 0: normal format
	brief, icase, ws, spaceChg   bool
	reportSame, recursive, empty bool
	labels                       []string
}

func cmdDiff(p *proc) int {
	o := diffOpts{unified: -1, context: 3}
	args := p.args
	var files []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			files = append(files, args[i+1:]...)
			i = len(args)
		case a == "-u" || a == "--unified":
			o.unified = 3
		case strings.HasPrefix(a, "-U") || strings.HasPrefix(a, "--unified="):
			v := strings.TrimPrefix(strings.TrimPrefix(a, "-U"), "--unified=")
			if v == "" && i+1 < len(args) {
				i++
				v = args[i]
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return p.usage("invalid context length '%s'", v)
			}
			o.unified = n
		case a == "-q" || a == "--brief":
			o.brief = true
		case a == "-s" || a == "--report-identical-files":
			o.reportSame = true
		case a == "-i" || a == "--ignore-case":
			o.icase = true
		case a == "-w" || a == "--ignore-all-space":
			o.ws = true
		case a == "-b" || a == "--ignore-space-change":
			o.spaceChg = true
		case a == "-r" || a == "--recursive":
			o.recursive = true
		case a == "-N" || a == "--new-file":
			o.empty = true
		case a == "--label" && i+1 < len(args):
			i++
			o.labels = append(o.labels, args[i])
		case strings.HasPrefix(a, "--label="):
			o.labels = append(o.labels, strings.TrimPrefix(a, "--label="))
		case a == "-a" || a == "--text" || a == "-B" || strings.HasPrefix(a, "--color") || a == "-d" || a == "--minimal" || a == "--strip-trailing-cr":
		case len(a) > 1 && a[0] == '-' && a != "-":
			// Combined short flags, such as -ru or -Naur.
			for _, c := range a[1:] {
				switch c {
				case 'u':
					o.unified = 3
				case 'r':
					o.recursive = true
				case 'N':
					o.empty = true
				case 'q':
					o.brief = true
				case 'i':
					o.icase = true
				case 'w':
					o.ws = true
				case 'b':
					o.spaceChg = true
				case 'a', 'B', 'd':
				default:
					p.errorf("invalid option -- '%c'\nUsage: diff [OPTION]... FILES", c)
					return 2
				}
			}
		default:
			files = append(files, a)
		}
	}
	if len(files) != 2 {
		if len(files) < 2 {
			p.errorf("missing operand after '%s'", strings.Join(files, " "))
		} else {
			p.errorf("extra operand '%s'", files[2])
		}
		return 2
	}
	status := p.diffPaths(files[0], files[1], &o, true)
	return status
}

// diffPaths compares two files, or two directories with -r.
func (p *proc) diffPaths(a, b string, o *diffOpts, top bool) int {
	ai, _, aerr := p.r.stat(a)
	bi, _, berr := p.r.stat(b)
	if aerr == nil && bi.IsDir() && berr == nil && !ai.IsDir() {
		b = strings.TrimSuffix(b, "/") + "/" + baseName(a)
		bi, _, berr = p.r.stat(b)
	} else if berr == nil && aerr == nil && ai.IsDir() && !bi.IsDir() {
		a = strings.TrimSuffix(a, "/") + "/" + baseName(b)
		ai, _, aerr = p.r.stat(a)
	}
	for _, e := range []struct {
		name string
		err  error
	}{{a, aerr}, {b, berr}} {
		if e.err != nil && !(o.empty && isNotExist(e.err)) {
			p.errorf("%s: %s", e.name, errText(e.err))
			return 2
		}
	}
	if aerr == nil && berr == nil && ai.IsDir() && bi.IsDir() {
		if !o.recursive {
			p.write(fmt.Sprintf("Common subdirectories: %s and %s\n", a, b))
			return 0
		}
		return p.diffDirs(a, b, o)
	}
	var x, y []byte
	if aerr == nil {
		x, _ = p.read(a)
	}
	if berr == nil {
		y, _ = p.read(b)
	}
	st := p.diffFiles(a, b, x, y, o, !top)
	return st
}

func (p *proc) diffDirs(a, b string, o *diffOpts) int {
	list := func(d string) map[string]bool {
		t, err := p.r.resolve(d)
		names := map[string]bool{}
		if err != nil || t.fs == nil {
			return names
		}
		entries, _ := t.fs.ReadDir(t.rel)
		for _, e := range entries {
			names[e.Name()] = true
		}
		return names
	}
	an, bn := list(a), list(b)
	all := map[string]bool{}
	for n := range an {
		all[n] = true
	}
	for n := range bn {
		all[n] = true
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	slices.Sort(names)
	status := 0
	for _, n := range names {
		pa, pb := path.Join(a, n), path.Join(b, n)
		switch {
		case !an[n] && !o.empty:
			p.write(fmt.Sprintf("Only in %s: %s\n", b, n))
			status = max(status, 1)
		case !bn[n] && !o.empty:
			p.write(fmt.Sprintf("Only in %s: %s\n", a, n))
			status = max(status, 1)
		default:
			status = max(status, p.diffPaths(pa, pb, o, false))
		}
	}
	return status
}

// diffLine is a line with whether it ended in a newline.
type diffLine struct {
	text string
	nl   bool
}

func splitDiffLines(b []byte) []diffLine {
	s := string(b)
	if s == "" {
		return nil
	}
	parts := strings.SplitAfter(s, "\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	out := make([]diffLine, len(parts))
	for i, l := range parts {
		out[i] = diffLine{text: strings.TrimSuffix(l, "\n"), nl: strings.HasSuffix(l, "\n")}
	}
	return out
}

func (o *diffOpts) key(l diffLine) string {
	s := l.text
	if o.ws {
		s = strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, s)
	} else if o.spaceChg {
		s = strings.Join(strings.Fields(s), " ")
	}
	if o.icase {
		s = strings.ToLower(s)
	}
	if !l.nl {
		s += "\x00" // a last line without its newline differs from one with it
	}
	return s
}

// diffOp is one line of an edit script: ' ' kept, '-' deleted, '+' added.
type diffOp struct {
	kind byte
	a, b int // line indexes in the two files (of the line, or where it goes)
}

func (p *proc) diffFiles(an, bn string, ab, bb []byte, o *diffOpts, header bool) int {
	x, y := splitDiffLines(ab), splitDiffLines(bb)
	xk := make([]string, len(x))
	yk := make([]string, len(y))
	for i, l := range x {
		xk[i] = o.key(l)
	}
	for i, l := range y {
		yk[i] = o.key(l)
	}
	ops := editScript(xk, yk, p.step)
	changed := false
	for _, op := range ops {
		if op.kind != ' ' {
			changed = true
			break
		}
	}
	if !changed {
		if o.reportSame {
			p.write(fmt.Sprintf("Files %s and %s are identical\n", an, bn))
		}
		return 0
	}
	if o.brief {
		p.write(fmt.Sprintf("Files %s and %s differ\n", an, bn))
		return 1
	}
	var b []byte
	if header && o.recursive {
		flags := "diff"
		if o.unified >= 0 {
			flags += " -u"
		}
		b = fmt.Appendf(b, "%s -r %s %s\n", flags, an, bn)
	}
	line := func(prefix string, l diffLine) {
		b = append(b, prefix+l.text+"\n"...)
		if !l.nl {
			b = append(b, "\\ No newline at end of file\n"...)
		}
	}
	if o.unified >= 0 {
		la, lb := an, bn
		if len(o.labels) > 0 {
			la = o.labels[0]
		} else {
			la += "\t" + p.diffTime(an)
		}
		if len(o.labels) > 1 {
			lb = o.labels[1]
		} else {
			lb += "\t" + p.diffTime(bn)
		}
		b = fmt.Appendf(b, "--- %s\n+++ %s\n", la, lb)
		for _, h := range hunks(ops, o.unified) {
			aStart, aLen, bStart, bLen := h.ranges(ops)
			b = fmt.Appendf(b, "@@ -%s +%s @@\n", uniRange(aStart, aLen), uniRange(bStart, bLen))
			for _, op := range ops[h.start:h.end] {
				switch op.kind {
				case ' ':
					line(" ", x[op.a])
				case '-':
					line("-", x[op.a])
				case '+':
					line("+", y[op.b])
				}
			}
		}
		p.write(string(b))
		return 1
	}
	for _, h := range hunks(ops, 0) {
		var dels, adds []diffOp
		for _, op := range ops[h.start:h.end] {
			switch op.kind {
			case '-':
				dels = append(dels, op)
			case '+':
				adds = append(adds, op)
			}
		}
		switch {
		case len(dels) > 0 && len(adds) > 0:
			b = fmt.Appendf(b, "%sc%s\n", normRange(dels[0].a+1, dels[len(dels)-1].a+1), normRange(adds[0].b+1, adds[len(adds)-1].b+1))
		case len(dels) > 0:
			b = fmt.Appendf(b, "%sd%d\n", normRange(dels[0].a+1, dels[len(dels)-1].a+1), dels[0].b)
		default:
			b = fmt.Appendf(b, "%da%s\n", adds[0].a, normRange(adds[0].b+1, adds[len(adds)-1].b+1))
		}
		for _, op := range dels {
			line("< ", x[op.a])
		}
		if len(dels) > 0 && len(adds) > 0 {
			b = append(b, "---\n"...)
		}
		for _, op := range adds {
			line("> ", y[op.b])
		}
	}
	p.write(string(b))
	return 1
}

func (p *proc) diffTime(name string) string {
	in, _, err := p.r.stat(name)
	if err != nil {
		return "1970-01-01 00:00:00.000000000 +0000"
	}
	return in.ModTime().UTC().Format("2006-01-02 15:04:05.000000000 -0700")
}

func normRange(a, b int) string {
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d,%d", a, b)
}

// uniRange prints a unified hunk's range: start,len, with len 1 left out
// and an empty range starting at the line before.
func uniRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start)
	case 1:
		return strconv.Itoa(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}

type hunk struct{ start, end int } // a range of ops

// hunks groups the changes of ops with ctx lines of context around each,
// merging groups whose context would touch.
func hunks(ops []diffOp, ctx int) []hunk {
	var out []hunk
	i := 0
	for i < len(ops) {
		if ops[i].kind == ' ' {
			i++
			continue
		}
		start := max(0, i-ctx)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			// A run of kept lines: does another change follow within 2*ctx?
			j := end
			for j < len(ops) && ops[j].kind == ' ' {
				j++
			}
			if j < len(ops) && j-end <= 2*ctx && (ctx > 0 || j == end) {
				end = j
				continue
			}
			end = min(len(ops), end+ctx)
			break
		}
		if len(out) > 0 && start <= out[len(out)-1].end && ctx > 0 {
			out[len(out)-1].end = end
		} else {
			out = append(out, hunk{start, end})
		}
		i = end
	}
	return out
}

// ranges returns a hunk's 1-based starts and lengths in both files.
func (h hunk) ranges(ops []diffOp) (aStart, aLen, bStart, bLen int) {
	first := ops[h.start]
	aStart, bStart = first.a+1, first.b+1
	for _, op := range ops[h.start:h.end] {
		switch op.kind {
		case ' ':
			aLen++
			bLen++
		case '-':
			aLen++
		case '+':
			bLen++
		}
	}
	if aLen == 0 {
		aStart--
	}
	if bLen == 0 {
		bStart--
	}
	return aStart, aLen, bStart, bLen
}

// editScript returns a shortest edit script from x to y (Myers), deletes
// before adds within a change, as diff prints them.
func editScript(x, y []string, step func()) []diffOp {
	// The common prefix and suffix need no search.
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	var ops []diffOp
	for i := 0; i < pre; i++ {
		ops = append(ops, diffOp{' ', i, i})
	}
	mid := myers(x[pre:len(x)-suf], y[pre:len(y)-suf], step)
	for _, op := range mid {
		ops = append(ops, diffOp{op.kind, op.a + pre, op.b + pre})
	}
	for i := 0; i < suf; i++ {
		ops = append(ops, diffOp{' ', len(x) - suf + i, len(y) - suf + i})
	}
	return ops
}

func myers(x, y []string, step func()) []diffOp {
	n, m := len(x), len(y)
	if n == 0 || m == 0 {
		return replaceAll(n, m, 0)
	}
	maxD := n + m
	offset := maxD
	v := make([]int, 2*maxD+2)
	var trace [][]int
	d := 0
	found := false
	for ; d <= maxD && d <= maxEdits; d++ {
		step()
		snap := make([]int, 2*d+1)
		for k := -d; k <= d; k += 2 {
			var xi int
			if k == -d || k != d && v[offset+k-1] < v[offset+k+1] {
				xi = v[offset+k+1]
			} else {
				xi = v[offset+k-1] + 1
			}
			yi := xi - k
			for xi < n && yi < m && x[xi] == y[yi] {
				xi++
				yi++
			}
			v[offset+k] = xi
			if xi >= n && yi >= m {
				found = true
			}
		}
		for k := -d; k <= d; k++ {
			snap[k+d] = v[offset+k]
		}
		trace = append(trace, snap)
		if found {
			break
		}
	}
	if !found {
		return replaceAll(n, m, 0)
	}
	// Walk back through the trace: each step d came from diagonal k+1
	// (an add: down) or k-1 (a delete: right), after which a snake of
	// kept lines led to where step d ended.
	get := func(d, k int) int { return trace[d][k+d] }
	var rev []diffOp
	xi, yi := n, m
	for dd := d; dd > 0; dd-- {
		k := xi - yi
		var pk int
		if k == -dd || k != dd && get(dd-1, k-1) < get(dd-1, k+1) {
			pk = k + 1
		} else {
			pk = k - 1
		}
		px := get(dd-1, pk)
		py := px - pk
		startX := px
		if pk == k-1 {
			startX = px + 1
		}
		for xi > startX {
			xi--
			yi--
			rev = append(rev, diffOp{' ', xi, yi})
		}
		if pk == k+1 {
			yi = py
			rev = append(rev, diffOp{'+', xi, yi})
		} else {
			xi = px
			rev = append(rev, diffOp{'-', xi, yi})
		}
	}
	for xi > 0 && yi > 0 {
		xi--
		yi--
		rev = append(rev, diffOp{' ', xi, yi})
	}
	ops := make([]diffOp, len(rev))
	for i, op := range rev {
		ops[len(rev)-1-i] = op
	}
	return reorder(ops)
}

// reorder puts the deletes of each change before its adds.
func reorder(ops []diffOp) []diffOp {
	out := make([]diffOp, 0, len(ops))
	i := 0
	for i < len(ops) {
		if ops[i].kind == ' ' {
			out = append(out, ops[i])
			i++
			continue
		}
		j := i
		for j < len(ops) && ops[j].kind != ' ' {
			j++
		}
		var adds []diffOp
		aAt := -1
		for _, op := range ops[i:j] {
			if op.kind == '-' {
				out = append(out, op)
			} else {
				adds = append(adds, op)
			}
		}
		for _, op := range ops[i:j] {
			if op.kind == '-' {
				aAt = op.a + 1
			}
		}
		for _, op := range adds {
			if aAt >= 0 {
				op.a = aAt
			}
			out = append(out, op)
		}
		i = j
	}
	return out
}

// replaceAll is the edit script that deletes x's n lines and adds y's m.
func replaceAll(n, m, base int) []diffOp {
	ops := make([]diffOp, 0, n+m)
	for i := 0; i < n; i++ {
		ops = append(ops, diffOp{'-', base + i, 0})
	}
	for j := 0; j < m; j++ {
		ops = append(ops, diffOp{'+', base + n, j})
	}
	return ops
}
