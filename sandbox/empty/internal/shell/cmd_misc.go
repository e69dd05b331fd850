package shell

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/damperdev/damper/sandbox/empty/internal/posixre"
)

func init() {
	for name, c := range map[string]command{
		"env": cmdEnv, "printenv": cmdPrintenv, "xargs": cmdXargs, "seq": cmdSeq,
		"sleep": cmdSleep, "yes": cmdYes, "timeout": cmdTimeout, "which": cmdWhich, "whoami": cmdWhoami,
		"id": cmdID, "uname": cmdUname, "hostname": cmdHostname, "md5sum": hashCmd(md5.New),
		"sha1sum": hashCmd(sha1.New), "sha256sum": hashCmd(sha256.New), "sha512sum": hashCmd(sha512.New),
		"base64": cmdBase64, "expr": cmdExpr, "nohup": cmdPassThrough, "nice": cmdPassThrough,
		"stdbuf": cmdPassThrough, "cmp": cmdCmp, "clear": cmdNoop, "tput": cmdNoop, "nproc": cmdNproc,
	} {
		commands[name] = c
	}
}

// inEnv runs args in a subshell whose exported variables are env, as a
// program started with that environment would see them.
func (p *proc) inEnv(env map[string]string, args []string) int {
	sub := p.r.subshell()
	for k, v := range sub.vars {
		if v.Exported {
			delete(sub.vars, k)
		}
	}
	for k, v := range env {
		sub.setString(k, v)
		sub.exportVar(k)
	}
	return sub.runCommand(args)
}

func cmdEnv(p *proc) int {
	env := p.r.environ()
	args := p.args
	for len(args) > 0 {
		a := args[0]
		switch {
		case a == "-i" || a == "-" || a == "--ignore-environment":
			env = map[string]string{}
		case a == "-u" && len(args) > 1:
			delete(env, args[1])
			args = args[1:]
		case a == "--":
			args = args[1:]
			goto cmd
		case strings.HasPrefix(a, "-") && len(a) > 1:
			return p.usage("invalid option -- '%s'", strings.TrimLeft(a, "-"))
		case strings.Contains(a, "="):
			k, v, _ := strings.Cut(a, "=")
			env[k] = v
		default:
			goto cmd
		}
		args = args[1:]
	}
cmd:
	for len(args) > 0 && strings.Contains(args[0], "=") {
		k, v, _ := strings.Cut(args[0], "=")
		env[k] = v
		args = args[1:]
	}
	if len(args) == 0 {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b []byte
		for _, k := range keys {
			b = append(b, k+"="+env[k]+"\n"...)
		}
		p.write(string(b))
		return 0
	}
	return p.inEnv(env, args)
}

func cmdPrintenv(p *proc) int {
	env := p.r.environ()
	if len(p.args) == 0 {
		return cmdEnv(&proc{r: p.r, name: "printenv", in: p.in, out: p.out, err: p.err})
	}
	status := 0
	for _, k := range p.args {
		v, ok := env[k]
		if !ok {
			status = 1
			continue
		}
		p.write(v + "\n")
	}
	return status
}

func cmdPassThrough(p *proc) int {
	args := p.args
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if args[0] == "-n" && len(args) > 1 && p.name == "nice" {
			args = args[1:]
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return 0
	}
	return p.r.runCommand(args)
}

// xargsSplit splits xargs input into arguments: blanks separate them,
// quotes and backslashes escape.
func xargsSplit(s string) ([]string, error) {
	var out []string
	var cur []byte
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unmatched %s quote; by default quotes are special to xargs unless you use the -0 option", map[byte]string{'\'': "single", '"': "double"}[c])
			}
			cur = append(cur, s[i+1:i+1+j]...)
			i += j + 1
			in = true
		case c == '\\' && i+1 < len(s):
			i++
			cur = append(cur, s[i])
			in = true
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				out = append(out, string(cur))
				cur = cur[:0]
				in = false
			}
		default:
			cur = append(cur, c)
			in = true
		}
	}
	if in {
		out = append(out, string(cur))
	}
	return out, nil
}

func cmdXargs(p *proc) int {
	args := p.args
	maxArgs, replace, delim, noEmpty, trace, maxLines := 0, "", "", false, false, 0
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && len(args[0]) > 1 {
		a := args[0]
		args = args[1:]
		val := func() (string, bool) {
			if len(a) > 2 && !strings.HasPrefix(a, "--") {
				return a[2:], true
			}
			if len(args) == 0 {
				return "", false
			}
			v := args[0]
			args = args[1:]
			return v, true
		}
		switch {
		case a == "--":
			goto run
		case a == "-0" || a == "--null":
			delim = "\x00"
		case a == "-r" || a == "--no-run-if-empty":
			noEmpty = true
		case a == "-t" || a == "--verbose":
			trace = true
		case strings.HasPrefix(a, "-n"):
			v, ok := val()
			n, err := strconv.Atoi(v)
			if !ok || err != nil || n < 1 {
				return p.usage("invalid number for -n option")
			}
			maxArgs = n
		case strings.HasPrefix(a, "-L"):
			v, ok := val()
			n, err := strconv.Atoi(v)
			if !ok || err != nil || n < 1 {
				return p.usage("invalid number for -L option")
			}
			maxLines = n
		case strings.HasPrefix(a, "-I"):
			v, ok := val()
			if !ok {
				return p.usage("option requires an argument -- 'I'")
			}
			replace = v
		case a == "-i":
			replace = "{}"
		case strings.HasPrefix(a, "-d"):
			v, ok := val()
			if !ok {
				return p.usage("option requires an argument -- 'd'")
			}
			s, _ := expandEscapes(v)
			delim = s
		case strings.HasPrefix(a, "-P"), strings.HasPrefix(a, "-s"):
			val()
		case a == "-p" || a == "-x" || a == "-e":
		default:
			return p.usage("invalid option -- '%s'", strings.TrimLeft(a, "-"))
		}
	}
run:
	cmd := args
	if len(cmd) == 0 {
		cmd = []string{"echo"}
	}
	data, _ := io.ReadAll(p.in)
	var items []string
	var err error
	switch {
	case replace != "" || maxLines > 0:
		// One line per command run.
		for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if replace != "" {
				l = strings.TrimLeft(l, " \t")
			}
			if strings.TrimSpace(l) == "" && replace == "" {
				continue
			}
			if l != "" || replace != "" {
				items = append(items, l)
			}
		}
		if len(data) == 0 {
			items = nil
		}
	case delim != "":
		items = strings.Split(string(data), delim)
		if len(items) > 0 && items[len(items)-1] == "" {
			items = items[:len(items)-1]
		} else if delim == "\n" && len(items) > 0 {
			// a last line without its newline is an item too
		}
	default:
		if items, err = xargsSplit(string(data)); err != nil {
			p.errorf("%s", err)
			return 1
		}
	}
	if len(items) == 0 && (noEmpty || replace != "") {
		return 0
	}
	status := 0
	runOne := func(argv []string) bool {
		p.step()
		if trace {
			fmt.Fprintln(p.err, strings.Join(argv, " "))
		}
		code := p.r.runCommand(argv)
		switch {
		case code == 255:
			p.errorf("%s: exited with status 255; aborting", argv[0])
			status = 124
			return false
		case code == 127 || code == 126:
			status = code
			return false
		case code != 0:
			status = 123
		}
		return true
	}
	if replace != "" {
		for _, it := range items {
			argv := make([]string, len(cmd))
			for i, c := range cmd {
				argv[i] = strings.ReplaceAll(c, replace, it)
			}
			if !runOne(argv) {
				return status
			}
		}
		return status
	}
	if maxLines > 0 {
		for i := 0; i < len(items); i += maxLines {
			var argv []string
			argv = append(argv, cmd...)
			for _, l := range items[i:min(i+maxLines, len(items))] {
				f, _ := xargsSplit(l)
				argv = append(argv, f...)
			}
			if !runOne(argv) {
				return status
			}
		}
		return status
	}
	n := maxArgs
	if n == 0 {
		n = max(len(items), 1)
	}
	for i := 0; i < max(len(items), 1); i += n {
		argv := append(append([]string(nil), cmd...), items[i:min(i+n, len(items))]...)
		if !runOne(argv) {
			return status
		}
	}
	return status
}

func cmdSeq(p *proc) int {
	args := p.args
	sep, format, width := "\n", "", false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && len(args[0]) > 1 && !isNumberArg(args[0]) {
		a := args[0]
		args = args[1:]
		switch {
		case a == "-s" && len(args) > 0:
			sep, args = args[0], args[1:]
		case strings.HasPrefix(a, "-s"):
			sep = a[2:]
		case a == "-f" && len(args) > 0:
			format, args = args[0], args[1:]
		case a == "-w":
			width = true
		case a == "--":
			goto nums
		default:
			return p.usage("invalid option -- '%s'", strings.TrimLeft(a, "-"))
		}
	}
nums:
	if len(args) == 0 || len(args) > 3 {
		return p.usage("missing operand")
	}
	first, incr, last := 1.0, 1.0, 0.0
	vals := make([]float64, len(args))
	prec := 0
	for i, a := range args {
		v, err := strconv.ParseFloat(a, 64)
		if err != nil || math.IsNaN(v) {
			p.errorf("invalid floating point argument: '%s'", a)
			return 1
		}
		vals[i] = v
		if j := strings.IndexByte(a, '.'); j >= 0 && i != len(args)-1 || j >= 0 && len(args) == 1 {
			prec = max(prec, len(a)-j-1)
		}
	}
	switch len(vals) {
	case 1:
		last = vals[0]
	case 2:
		first, last = vals[0], vals[1]
	case 3:
		first, incr, last = vals[0], vals[1], vals[2]
	}
	if incr == 0 {
		p.errorf("invalid Zero increment value: '%s'", args[1])
		return 1
	}
	fmtNum := func(v float64) string {
		if format != "" {
			s, _, _ := printfFormat(format, []string{strconv.FormatFloat(v, 'f', -1, 64)})
			return s
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	w := 0
	if width {
		w = max(len(fmtNum(first)), len(fmtNum(last)))
	}
	var b []byte
	n := 0
	for v := first; incr > 0 && v <= last+1e-9 || incr < 0 && v >= last-1e-9; v = first + float64(n)*incr {
		p.step()
		if n > 0 {
			b = append(b, sep...)
		}
		s := fmtNum(v)
		if width && len(s) < w {
			if strings.HasPrefix(s, "-") {
				s = "-" + strings.Repeat("0", w-len(s)) + s[1:]
			} else {
				s = strings.Repeat("0", w-len(s)) + s
			}
		}
		b = append(b, s...)
		n++
		if len(b) > 64<<10 {
			if p.write(string(b)) != nil {
				return 1
			}
			b = b[:0]
		}
	}
	if n > 0 {
		b = append(b, "\n"...)
	}
	if p.write(string(b)) != nil {
		return 1
	}
	return 0
}

func isNumberArg(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

func cmdSleep(p *proc) int {
	if len(p.args) == 0 {
		return p.usage("missing operand")
	}
	var total time.Duration
	for _, a := range p.args {
		d, ok := parseDuration(a)
		if !ok {
			p.errorf("invalid time interval '%s'", a)
			return 1
		}
		total += d
	}
	return p.r.sleep(total)
}

// sleep waits d through the configured Sleep, never past the deadline:
// then the Run times out.
func (r *Runner) sleep(d time.Duration) int {
	s := r.sh
	if d <= 0 {
		return 0
	}
	timedOut := false
	if !s.deadline.IsZero() {
		if left := s.deadline.Sub(s.now()); left < d {
			d, timedOut = max(left, 0), true
		}
	}
	if s.cfg.Sleep != nil && d > 0 {
		if err := s.cfg.Sleep(d); err != nil {
			panic(stopRun{err: err})
		}
	}
	if timedOut {
		panic(stopRun{timedOut: true})
	}
	s.checkTime()
	return 0
}

// parseDuration reads sleep's and timeout's durations: a number with an
// optional s, m, h or d suffix.
func parseDuration(s string) (time.Duration, bool) {
	mult := time.Second
	switch {
	case strings.HasSuffix(s, "s"):
		s = s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		s, mult = s[:len(s)-1], time.Minute
	case strings.HasSuffix(s, "h"):
		s, mult = s[:len(s)-1], time.Hour
	case strings.HasSuffix(s, "d"):
		s, mult = s[:len(s)-1], 24*time.Hour
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, false
	}
	return time.Duration(v * float64(mult)), true
}

func cmdYes(p *proc) int {
	s := "y"
	if len(p.args) > 0 {
		s = strings.Join(p.args, " ")
	}
	chunk := strings.Repeat(s+"\n", max(1, 8192/(len(s)+1)))
	for {
		p.step()
		if p.write(chunk) != nil {
			return 1
		}
	}
}

func cmdTimeout(p *proc) int {
	args := p.args
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch {
		case args[0] == "-s" || args[0] == "-k" || args[0] == "--signal" || args[0] == "--kill-after":
			if len(args) > 1 {
				args = args[1:]
			}
		case args[0] == "--":
			args = args[1:]
			goto run
		}
		args = args[1:]
	}
run:
	if len(args) < 2 {
		return p.usage("missing operand")
	}
	d, ok := parseDuration(args[0])
	if !ok {
		p.errorf("invalid time interval '%s'", args[0])
		return 125
	}
	s := p.r.sh
	outer := s.deadline
	inner := s.now().Add(d)
	if d == 0 || !outer.IsZero() && outer.Before(inner) {
		return p.r.runCommand(args[1:])
	}
	s.deadline = inner
	defer func() { s.deadline = outer }()
	return p.runTimed(args[1:], inner)
}

// runTimed runs args until deadline: status 124 when it passes.
func (p *proc) runTimed(args []string, deadline time.Time) (code int) {
	defer func() {
		if x := recover(); x != nil {
			if st, ok := x.(stopRun); ok && st.timedOut && !p.r.sh.now().Before(deadline) && p.r.sh.steps <= p.r.sh.maxSteps {
				code = 124
				return
			}
			panic(x)
		}
	}()
	return p.r.runCommand(args)
}

func cmdWhich(p *proc) int {
	status := 0
	for _, a := range p.args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		if _, ok := commandFor(a); ok {
			p.write("/usr/bin/" + a + "\n")
		} else {
			status = 1
		}
	}
	return status
}

func cmdWhoami(p *proc) int { return boolStatus(p.write("user\n") != nil) }

func cmdID(p *proc) int {
	switch {
	case len(p.args) > 0 && (p.args[0] == "-u" || p.args[0] == "-g"):
		return boolStatus(p.write("1000\n") != nil)
	case len(p.args) > 0 && (p.args[0] == "-un" || p.args[0] == "-gn" || p.args[0] == "-nu"):
		return boolStatus(p.write("user\n") != nil)
	}
	return boolStatus(p.write("uid=1000(user) gid=1000(user) groups=1000(user)\n") != nil)
}

func cmdUname(p *proc) int {
	parts := map[byte]string{'s': "Linux", 'n': "sandbox", 'r': "6.0.0", 'v': "#1", 'm': "wasm32", 'o': "GNU/Linux"}
	if len(p.args) == 0 {
		return boolStatus(p.write("Linux\n") != nil)
	}
	var out []string
	for _, a := range p.args {
		if a == "-a" || a == "--all" {
			out = []string{"Linux", "sandbox", "6.0.0", "#1", "wasm32", "GNU/Linux"}
			break
		}
		for i := 1; i < len(a); i++ {
			if v, ok := parts[a[i]]; ok {
				out = append(out, v)
			}
		}
	}
	return boolStatus(p.write(strings.Join(out, " ")+"\n") != nil)
}

func cmdHostname(p *proc) int { return boolStatus(p.write("sandbox\n") != nil) }

func cmdNproc(p *proc) int { return boolStatus(p.write("1\n") != nil) }

func hashCmd(newHash func() hash.Hash) command {
	return func(p *proc) int {
		args := p.args
		check := false
		if len(args) > 0 && (args[0] == "-c" || args[0] == "--check") {
			check, args = true, args[1:]
		}
		if check {
			status := 0
			p.inputs(args, func(_ string, data []byte) error {
				for _, l := range lines(data) {
					sum, name, ok := strings.Cut(string(l), "  ")
					if !ok {
						continue
					}
					b, err := p.read(name)
					h := newHash()
					h.Write(b)
					if err != nil || hex.EncodeToString(h.Sum(nil)) != sum {
						p.write(name + ": FAILED\n")
						status = 1
					} else {
						p.write(name + ": OK\n")
					}
				}
				return nil
			})
			return status
		}
		return p.inputs(args, func(name string, data []byte) error {
			h := newHash()
			h.Write(data)
			return p.write(hex.EncodeToString(h.Sum(nil)) + "  " + name + "\n")
		})
	}
}

func cmdBase64(p *proc) int {
	f, err := p.parseFlags(p.args, "di", "w", map[string]byte{"decode": 'd', "wrap": 'w', "ignore-garbage": 'i'}, true)
	if err != nil {
		return p.usage("%s", err)
	}
	wrap := 76
	if v, ok := f.val('w'); ok {
		wrap, _ = strconv.Atoi(v)
	}
	return p.inputs(f.rest, func(_ string, data []byte) error {
		if f.has('d') {
			clean := strings.Map(func(r rune) rune {
				if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
					return -1
				}
				return r
			}, string(data))
			out, err := base64.StdEncoding.DecodeString(clean)
			if err != nil {
				if out2, err2 := base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "=")); err2 == nil {
					return p.writeBytes(out2)
				}
				p.writeBytes(out)
				p.errorf("invalid input")
				return err
			}
			return p.writeBytes(out)
		}
		s := base64.StdEncoding.EncodeToString(data)
		var b []byte
		for wrap > 0 && len(s) > wrap {
			b = append(b, s[:wrap]+"\n"...)
			s = s[wrap:]
		}
		if s != "" || len(b) == 0 && len(data) > 0 {
			b = append(b, s+"\n"...)
		}
		return p.write(string(b))
	})
}

func cmdCmp(p *proc) int {
	args := p.args
	silent := false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && len(args[0]) > 1 {
		if args[0] == "-s" || args[0] == "--quiet" || args[0] == "--silent" {
			silent = true
		}
		args = args[1:]
	}
	if len(args) < 2 {
		return p.usage("missing operand")
	}
	a, err := p.read(args[0])
	if err != nil {
		p.errorf("%s: %s", args[0], errText(err))
		return 2
	}
	b, err := p.read(args[1])
	if err != nil {
		p.errorf("%s: %s", args[1], errText(err))
		return 2
	}
	line := 1
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if !silent {
				p.write(fmt.Sprintf("%s %s differ: byte %d, line %d\n", args[0], args[1], i+1, line))
			}
			return 1
		}
		if a[i] == '\n' {
			line++
		}
	}
	if len(a) != len(b) {
		if !silent {
			short := args[0]
			if len(b) < len(a) {
				short = args[1]
			}
			fmt.Fprintf(p.err, "cmp: EOF on %s after byte %d, line %d\n", short, min(len(a), len(b)), line)
		}
		return 1
	}
	return 0
}

// expr evaluates expr(1)'s expressions.
func cmdExpr(p *proc) int {
	e := &exprParser{args: p.args}
	v, err := e.or()
	if err == nil && e.pos < len(e.args) {
		err = fmt.Errorf("syntax error: unexpected argument '%s'", e.args[e.pos])
	}
	if err != nil {
		p.errorf("%s", err)
		return 2
	}
	p.write(v + "\n")
	if v == "" || v == "0" {
		return 1
	}
	return 0
}

type exprParser struct {
	args []string
	pos  int
}

func (e *exprParser) peek() string {
	if e.pos < len(e.args) {
		return e.args[e.pos]
	}
	return ""
}

func exprNull(s string) bool { return s == "" || s == "0" }

func (e *exprParser) or() (string, error) {
	v, err := e.and()
	for err == nil && e.peek() == "|" {
		e.pos++
		var w string
		if w, err = e.and(); err == nil && exprNull(v) {
			v = w
			if exprNull(w) {
				v = "0"
			}
		}
	}
	return v, err
}

func (e *exprParser) and() (string, error) {
	v, err := e.cmp()
	for err == nil && e.peek() == "&" {
		e.pos++
		var w string
		if w, err = e.cmp(); err == nil && (exprNull(v) || exprNull(w)) {
			v = "0"
		}
	}
	return v, err
}

func (e *exprParser) cmp() (string, error) {
	v, err := e.add()
	for err == nil {
		op := e.peek()
		if op != "=" && op != "!=" && op != "<" && op != "<=" && op != ">" && op != ">=" && op != "==" {
			break
		}
		e.pos++
		var w string
		if w, err = e.add(); err != nil {
			break
		}
		var c int
		x, errX := strconv.ParseInt(v, 10, 64)
		y, errY := strconv.ParseInt(w, 10, 64)
		if errX == nil && errY == nil {
			c = compareNum(float64(x), float64(y))
		} else {
			c = strings.Compare(v, w)
		}
		ok := map[string]bool{"=": c == 0, "==": c == 0, "!=": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
		v = "0"
		if ok {
			v = "1"
		}
	}
	return v, err
}

func (e *exprParser) add() (string, error) {
	v, err := e.mul()
	for err == nil && (e.peek() == "+" || e.peek() == "-") {
		op := e.peek()
		e.pos++
		var w string
		if w, err = e.mul(); err != nil {
			break
		}
		v, err = exprArith(v, w, op)
	}
	return v, err
}

func (e *exprParser) mul() (string, error) {
	v, err := e.match()
	for err == nil && (e.peek() == "*" || e.peek() == "/" || e.peek() == "%") {
		op := e.peek()
		e.pos++
		var w string
		if w, err = e.match(); err != nil {
			break
		}
		v, err = exprArith(v, w, op)
	}
	return v, err
}

func exprArith(a, b, op string) (string, error) {
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("non-integer argument")
	}
	switch op {
	case "+":
		return strconv.FormatInt(x+y, 10), nil
	case "-":
		return strconv.FormatInt(x-y, 10), nil
	case "*":
		return strconv.FormatInt(x*y, 10), nil
	}
	if y == 0 {
		return "", fmt.Errorf("division by zero")
	}
	if op == "/" {
		return strconv.FormatInt(x/y, 10), nil
	}
	return strconv.FormatInt(x%y, 10), nil
}

func (e *exprParser) match() (string, error) {
	v, err := e.primary()
	for err == nil && e.peek() == ":" {
		e.pos++
		var pat string
		if pat, err = e.primary(); err != nil {
			break
		}
		v, err = exprMatch(v, pat)
	}
	return v, err
}

func exprMatch(s, pat string) (string, error) {
	expr, err := posixre.Translate(pat, false)
	if err != nil {
		return "", err
	}
	rx, err := regexp.Compile("^(?:" + expr + ")")
	if err != nil {
		return "", fmt.Errorf("invalid regular expression")
	}
	m := rx.FindStringSubmatch(s)
	if rx.NumSubexp() > 0 {
		if m == nil {
			return "", nil
		}
		return m[1], nil
	}
	if m == nil {
		return "0", nil
	}
	return strconv.Itoa(utf8.RuneCountInString(m[0])), nil
}

func (e *exprParser) primary() (string, error) {
	if e.pos >= len(e.args) {
		return "", fmt.Errorf("syntax error: missing argument")
	}
	a := e.args[e.pos]
	e.pos++
	switch a {
	case "(":
		v, err := e.or()
		if err != nil {
			return "", err
		}
		if e.peek() != ")" {
			return "", fmt.Errorf("syntax error: expecting ')'")
		}
		e.pos++
		return v, nil
	case "length":
		v, err := e.primary()
		return strconv.Itoa(utf8.RuneCountInString(v)), err
	case "match":
		s, err := e.primary()
		if err != nil {
			return "", err
		}
		pat, err := e.primary()
		if err != nil {
			return "", err
		}
		return exprMatch(s, pat)
	case "substr":
		s, err := e.primary()
		if err != nil {
			return "", err
		}
		ps, err := e.primary()
		if err != nil {
			return "", err
		}
		ls, err := e.primary()
		if err != nil {
			return "", err
		}
		pos, _ := strconv.Atoi(ps)
		n, _ := strconv.Atoi(ls)
		rs := []rune(s)
		if pos < 1 || pos > len(rs) || n < 1 {
			return "", nil
		}
		return string(rs[pos-1 : min(len(rs), pos-1+n)]), nil
	case "index":
		s, err := e.primary()
		if err != nil {
			return "", err
		}
		chars, err := e.primary()
		if err != nil {
			return "", err
		}
		i := strings.IndexAny(s, chars)
		return strconv.Itoa(i + 1), nil
	case "+":
		return e.primary()
	}
	return a, nil
}
