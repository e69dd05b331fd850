package shell

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/damperdev/damper/sandbox/empty/internal/memfs"
)

func init() { commands["find"] = cmdFind }

// findNode is one node of find's expression.
type findNode struct {
	op   string // and, or, not, or a primary's name
	a, b *findNode
	arg  string
	rx   *regexp.Regexp
	n    int64
	cmp  byte // '+', '-' or 0 for -size, -mtime
	cmd  []string
	plus bool // -exec ... {} +
}

type findEntry struct {
	display string
	t       target
	info    memfs.Info
	depth   int
}

type findParser struct {
	args []string
	pos  int
	// actions says the expression prints, execs or deletes itself, so
	// find adds no -print.
	actions bool
}

func (fp *findParser) peek() string {
	if fp.pos < len(fp.args) {
		return fp.args[fp.pos]
	}
	return ""
}

func (fp *findParser) or() (*findNode, error) {
	n, err := fp.and()
	for err == nil && (fp.peek() == "-o" || fp.peek() == "-or") {
		fp.pos++
		var m *findNode
		if m, err = fp.and(); err == nil {
			n = &findNode{op: "or", a: n, b: m}
		}
	}
	return n, err
}

func (fp *findParser) and() (*findNode, error) {
	n, err := fp.not()
	for err == nil && fp.pos < len(fp.args) && fp.peek() != "-o" && fp.peek() != "-or" && fp.peek() != ")" && fp.peek() != "," {
		if fp.peek() == "-a" || fp.peek() == "-and" {
			fp.pos++
		}
		var m *findNode
		if m, err = fp.not(); err == nil {
			n = &findNode{op: "and", a: n, b: m}
		}
	}
	return n, err
}

func (fp *findParser) not() (*findNode, error) {
	if fp.peek() == "!" || fp.peek() == "-not" {
		fp.pos++
		n, err := fp.not()
		return &findNode{op: "not", a: n}, err
	}
	return fp.primary()
}

func (fp *findParser) primary() (*findNode, error) {
	if fp.pos >= len(fp.args) {
		return nil, fmt.Errorf("expected an expression")
	}
	a := fp.args[fp.pos]
	fp.pos++
	arg := func() (string, error) {
		if fp.pos >= len(fp.args) {
			return "", fmt.Errorf("missing argument to `%s'", a)
		}
		v := fp.args[fp.pos]
		fp.pos++
		return v, nil
	}
	switch a {
	case "(":
		n, err := fp.or()
		if err != nil {
			return nil, err
		}
		if fp.peek() != ")" {
			return nil, fmt.Errorf("invalid expression; I was expecting to find a ')' somewhere but did not see one")
		}
		fp.pos++
		return n, nil
	case "-true", "-false", "-empty", "-print", "-print0", "-delete", "-prune", "-quit", "-ls":
		if a == "-print" || a == "-print0" || a == "-delete" || a == "-ls" {
			fp.actions = true
		}
		return &findNode{op: a}, nil
	case "-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-type", "-regex", "-iregex", "-newer", "-printf", "-user", "-group", "-perm", "-lname":
		v, err := arg()
		if err != nil {
			return nil, err
		}
		n := &findNode{op: a, arg: v}
		switch a {
		case "-type":
			for _, t := range strings.Split(v, ",") {
				if len(t) != 1 || strings.IndexByte("fdlpscb", t[0]) < 0 {
					return nil, fmt.Errorf("unknown argument to -type: %s", v)
				}
			}
		case "-regex", "-iregex":
			expr := "^(?:" + v + ")$"
			if a == "-iregex" {
				expr = "(?i)" + expr
			}
			rx, err := regexp.Compile(expr)
			if err != nil {
				return nil, fmt.Errorf("invalid regular expression %q", v)
			}
			n.rx = rx
		case "-printf":
			fp.actions = true
		}
		return n, nil
	case "-size", "-mtime", "-mmin", "-maxdepth", "-mindepth", "-links":
		v, err := arg()
		if err != nil {
			return nil, err
		}
		n := &findNode{op: a}
		if v != "" && (v[0] == '+' || v[0] == '-') {
			n.cmp, v = v[0], v[1:]
		}
		unit := int64(1)
		if a == "-size" {
			unit = 512
			if v != "" {
				switch v[len(v)-1] {
				case 'c':
					unit, v = 1, v[:len(v)-1]
				case 'w':
					unit, v = 2, v[:len(v)-1]
				case 'b':
					unit, v = 512, v[:len(v)-1]
				case 'k':
					unit, v = 1024, v[:len(v)-1]
				case 'M':
					unit, v = 1<<20, v[:len(v)-1]
				case 'G':
					unit, v = 1<<30, v[:len(v)-1]
				}
			}
			n.arg = strconv.FormatInt(unit, 10)
		}
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid argument `%s' to `%s'", v, a)
		}
		n.n = x
		return n, nil
	case "-exec", "-execdir", "-ok", "-okdir":
		fp.actions = true
		n := &findNode{op: "-exec"}
		for fp.pos < len(fp.args) {
			v := fp.args[fp.pos]
			fp.pos++
			if v == ";" {
				if len(n.cmd) == 0 {
					return nil, fmt.Errorf("missing argument to `%s'", a)
				}
				return n, nil
			}
			if v == "+" && len(n.cmd) > 0 && n.cmd[len(n.cmd)-1] == "{}" {
				n.plus = true
				n.cmd = n.cmd[:len(n.cmd)-1]
				return n, nil
			}
			n.cmd = append(n.cmd, v)
		}
		return nil, fmt.Errorf("missing argument to `%s'", a)
	case "-depth", "-follow", "-xdev", "-mount", "-noleaf", "-daystart", "-nowarn", "-warn", "-ignore_readdir_race":
		return &findNode{op: "-true"}, nil
	}
	if strings.HasPrefix(a, "-") {
		return nil, fmt.Errorf("unknown predicate `%s'", a)
	}
	return nil, fmt.Errorf("paths must precede expression: `%s'", a)
}

func cmdFind(p *proc) int {
	args := p.args
	for len(args) > 0 && (args[0] == "-L" || args[0] == "-H" || args[0] == "-P") {
		args = args[1:]
	}
	var roots []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") && args[0] != "(" && args[0] != "!" {
		roots = append(roots, args[0])
		args = args[1:]
	}
	if len(roots) == 0 {
		roots = []string{"."}
	}
	// -maxdepth and -mindepth are options wherever they stand.
	maxDepth, minDepth := -1, 0
	var rest []string
	for i := 0; i < len(args); i++ {
		if (args[i] == "-maxdepth" || args[i] == "-mindepth") && i+1 < len(args) {
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 0 {
				p.errorf("invalid argument `%s' to `%s'", args[i+1], args[i])
				return 1
			}
			if args[i] == "-maxdepth" {
				maxDepth = n
			} else {
				minDepth = n
			}
			i++
			continue
		}
		rest = append(rest, args[i])
	}
	fp := &findParser{args: rest}
	var expr *findNode
	if len(rest) > 0 {
		var err error
		if expr, err = fp.or(); err == nil && fp.pos < len(rest) {
			err = fmt.Errorf("unexpected `%s'", rest[fp.pos])
		}
		if err != nil {
			p.errorf("%s", err)
			return 1
		}
	}
	status := 0
	var batches = map[*findNode][]string{}
	var order []*findNode
	quit := false
	var b []byte
	flush := func() {
		if len(b) > 0 {
			p.write(string(b))
			b = b[:0]
		}
	}
	var eval func(n *findNode, e *findEntry, prune *bool) bool
	eval = func(n *findNode, e *findEntry, prune *bool) bool {
		if n == nil {
			return true
		}
		switch n.op {
		case "and":
			return eval(n.a, e, prune) && eval(n.b, e, prune)
		case "or":
			return eval(n.a, e, prune) || eval(n.b, e, prune)
		case "not":
			return !eval(n.a, e, prune)
		case "-true":
			return true
		case "-false":
			return false
		case "-name", "-iname":
			name := path.Base(e.display)
			pat := n.arg
			if n.op == "-iname" {
				name, pat = strings.ToLower(name), strings.ToLower(pat)
			}
			return p.r.match(pat, name)
		case "-path", "-wholename", "-ipath", "-iwholename":
			s, pat := e.display, n.arg
			if n.op[1] == 'i' {
				s, pat = strings.ToLower(s), strings.ToLower(pat)
			}
			return p.r.match(pat, s)
		case "-regex", "-iregex":
			return n.rx.MatchString(e.display)
		case "-type":
			for _, t := range strings.Split(n.arg, ",") {
				switch t {
				case "f":
					if e.info.Mode().IsRegular() {
						return true
					}
				case "d":
					if e.info.IsDir() {
						return true
					}
				}
			}
			return false
		case "-empty":
			if e.info.IsDir() {
				entries, _ := e.t.fs.ReadDir(e.t.rel)
				return len(entries) == 0
			}
			return e.info.Size() == 0
		case "-size":
			unit, _ := strconv.ParseInt(n.arg, 10, 64)
			size := (e.info.Size() + unit - 1) / unit
			return cmpN(size, n.n, n.cmp)
		case "-mtime", "-mmin":
			age := p.r.sh.now().Sub(e.info.ModTime())
			unit := 24 * time.Hour
			if n.op == "-mmin" {
				unit = time.Minute
			}
			return cmpN(int64(age/unit), n.n, n.cmp)
		case "-newer":
			in, _, err := p.r.stat(n.arg)
			return err == nil && e.info.ModTime().After(in.ModTime())
		case "-links":
			return cmpN(1, n.n, n.cmp)
		case "-user", "-group", "-perm", "-lname":
			return n.op != "-lname"
		case "-print":
			b = append(b, e.display+"\n"...)
			return true
		case "-print0":
			b = append(b, e.display+"\x00"...)
			return true
		case "-ls":
			b = fmt.Appendf(b, "%s 1 user user %d %s %s\n", modeString(e.info.Mode()), e.info.Size(), lsTime(e.info.ModTime()), e.display)
			return true
		case "-printf":
			b = append(b, findPrintf(n.arg, e)...)
			return true
		case "-prune":
			*prune = true
			return true
		case "-quit":
			quit = true
			return true
		case "-delete":
			if e.t.rel == "." {
				p.errorf("cannot delete '%s': Permission denied", e.display)
				status = 1
				return false
			}
			if err := e.t.fs.Remove(e.t.rel); err != nil {
				p.errorf("cannot delete '%s': %s", e.display, errText(err))
				status = 1
				return false
			}
			return true
		case "-exec":
			if n.plus {
				if _, ok := batches[n]; !ok {
					order = append(order, n)
				}
				batches[n] = append(batches[n], e.display)
				return true
			}
			argv := make([]string, len(n.cmd))
			for i, c := range n.cmd {
				argv[i] = strings.ReplaceAll(c, "{}", e.display)
			}
			flush()
			return p.r.runCommand(argv) == 0
		}
		return false
	}
	// -delete implies -depth: a directory comes after what it holds.
	depthFirst := hasOp(expr, "-delete")
	visit := func(e *findEntry) bool {
		prune := false
		if e.depth >= minDepth {
			if eval(expr, e, &prune) && !fp.actions {
				b = append(b, e.display+"\n"...)
			}
			if len(b) > 64<<10 {
				flush()
			}
		}
		return prune
	}
	var walk func(e *findEntry)
	walk = func(e *findEntry) {
		if quit {
			return
		}
		p.step()
		if !depthFirst && visit(e) {
			return
		}
		if depthFirst {
			defer visit(e)
		}
		if !e.info.IsDir() || maxDepth >= 0 && e.depth >= maxDepth {
			return
		}
		entries, err := e.t.fs.ReadDir(e.t.rel)
		if err != nil {
			return
		}
		for _, in := range entries {
			child := e.t
			child.rel = path.Join(e.t.rel, in.Name())
			child.abs = path.Join(e.t.abs, in.Name())
			display := e.display + "/" + in.Name()
			if strings.HasSuffix(e.display, "/") {
				display = e.display + in.Name()
			}
			walk(&findEntry{display: display, t: child, info: in, depth: e.depth + 1})
		}
	}
	for _, root := range roots {
		in, t, err := p.r.stat(root)
		if err != nil || t.fs == nil {
			if err == nil {
				err = &fs.PathError{Op: "open", Path: root, Err: fs.ErrPermission}
			}
			flush()
			p.errorf("'%s': %s", root, errText(err))
			status = 1
			continue
		}
		walk(&findEntry{display: root, t: t, info: in})
	}
	flush()
	for _, n := range order {
		argv := append(append([]string(nil), n.cmd...), batches[n]...)
		if p.r.runCommand(argv) != 0 {
			status = 1
		}
	}
	return status
}

func hasOp(n *findNode, op string) bool {
	return n != nil && (n.op == op || hasOp(n.a, op) || hasOp(n.b, op))
}

func cmpN(v, n int64, cmp byte) bool {
	switch cmp {
	case '+':
		return v > n
	case '-':
		return v < n
	}
	return v == n
}

// findPrintf formats one entry for -printf.
func findPrintf(format string, e *findEntry) string {
	var b []byte
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c == '\\' && i+1 < len(format) {
			n, s, _ := escape(format[i+1:], false)
			b = append(b, s...)
			i += n
			continue
		}
		if c != '%' || i+1 >= len(format) {
			b = append(b, c)
			continue
		}
		i++
		switch format[i] {
		case 'p':
			b = append(b, e.display...)
		case 'f':
			b = append(b, path.Base(e.display)...)
		case 'h':
			b = append(b, dirName(e.display)...)
		case 's':
			b = append(b, strconv.FormatInt(e.info.Size(), 10)...)
		case 'd':
			b = append(b, strconv.Itoa(e.depth)...)
		case 'y':
			if e.info.IsDir() {
				b = append(b, 'd')
			} else {
				b = append(b, 'f')
			}
		case 'm':
			b = append(b, strconv.FormatUint(uint64(e.info.Mode().Perm()), 8)...)
		case 'P':
			rel := strings.TrimPrefix(e.display, strings.SplitN(e.display, "/", 2)[0])
			b = append(b, strings.TrimPrefix(rel, "/")...)
		case 'T', 't':
			if i+1 < len(format) && format[i] == 'T' {
				i++
				b = append(b, strftime("%"+string(format[i]), e.info.ModTime().UTC())...)
			} else {
				b = append(b, e.info.ModTime().UTC().Format("Mon Jan _2 15:04:05 2006")...)
			}
		case '%':
			b = append(b, '%')
		default:
			b = append(b, '%')
			b = append(b, format[i])
		}
	}
	return string(b)
}
