package shell

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// testErr is an operand test and [[ ]] cannot use: status 2.
type testErr struct{ msg string }

func (e testErr) Error() string { return e.msg }

// testClause evaluates [[ x ]]: 0 true, 1 false, 2 an error.
func (r *Runner) testClause(x syntax.TestExpr) (status int) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(testErr); ok {
				r.errf("%s", e.msg)
				status = 2
				return
			}
			panic(p)
		}
	}()
	if r.testExpr(x) {
		return 0
	}
	return 1
}

func (r *Runner) testExpr(x syntax.TestExpr) bool {
	switch x := x.(type) {
	case *syntax.Word:
		return r.literal(x) != ""
	case *syntax.ParenTest:
		return r.testExpr(x.X)
	case *syntax.UnaryTest:
		if x.Op == syntax.TsNot {
			return !r.testExpr(x.X)
		}
		w, _ := x.X.(*syntax.Word)
		ok, err := r.unaryTest(x.Op.String(), r.literal(w))
		if err != nil {
			panic(testErr{err.Error()})
		}
		return ok
	case *syntax.BinaryTest:
		switch x.Op {
		case syntax.AndTest:
			return r.testExpr(x.X) && r.testExpr(x.Y)
		case syntax.OrTest:
			return r.testExpr(x.X) || r.testExpr(x.Y)
		}
		lw, _ := x.X.(*syntax.Word)
		rw, _ := x.Y.(*syntax.Word)
		lhs := r.literal(lw)
		switch x.Op {
		case syntax.TsMatch, syntax.TsMatchShort:
			return r.match(r.pattern(rw), lhs)
		case syntax.TsNoMatch:
			return !r.match(r.pattern(rw), lhs)
		case syntax.TsReMatch:
			return r.reMatch(lhs, r.regexWord(rw))
		}
		ok, err := r.binaryTest(x.Op.String(), lhs, r.literal(rw))
		if err != nil {
			panic(testErr{err.Error()})
		}
		return ok
	}
	panic(testErr{fmt.Sprintf("unsupported test expression %T", x)})
}

// regexWord is the right side of =~: quoted parts match literally.
func (r *Runner) regexWord(w *syntax.Word) string {
	var b []byte
	for _, p := range w.Parts {
		part := &syntax.Word{Parts: []syntax.WordPart{p}}
		switch p.(type) {
		case *syntax.SglQuoted, *syntax.DblQuoted:
			b = append(b, regexp.QuoteMeta(r.literal(part))...)
		default:
			b = append(b, r.literal(part)...)
		}
	}
	return string(b)
}

func (r *Runner) reMatch(s, expr string) bool {
	rx, err := regexp.Compile(expr)
	if err != nil {
		panic(testErr{fmt.Sprintf("invalid regular expression `%s'", expr)})
	}
	m := rx.FindStringSubmatch(s)
	if m == nil {
		delete(r.vars, "BASH_REMATCH")
		return false
	}
	r.vars["BASH_REMATCH"] = expand.Variable{Set: true, Kind: expand.Indexed, List: m}
	return true
}

// unaryTest evaluates -op operand, for test and [[ ]].
func (r *Runner) unaryTest(op, a string) (bool, error) {
	switch op {
	case "-z":
		return a == "", nil
	case "-n":
		return a != "", nil
	case "-v":
		return r.Get(a).IsSet(), nil
	case "-o":
		on, ok := r.option(a)
		return ok && on, nil
	case "-t":
		return false, nil
	}
	in, t, err := r.stat(a)
	if a == "" || err != nil {
		return false, nil
	}
	mode := in.Mode()
	switch op {
	case "-e", "-a":
		return true, nil
	case "-f":
		return mode.IsRegular(), nil
	case "-d":
		return mode.IsDir(), nil
	case "-s":
		return in.Size() > 0, nil
	case "-r", "-w":
		return true, nil // the shell's user owns every file
	case "-x":
		return mode&0o111 != 0 || mode.IsDir(), nil
	case "-L", "-h", "-p", "-S", "-b", "-u", "-g", "-k":
		return false, nil
	case "-c":
		return t.dev != "", nil
	case "-O", "-G":
		return true, nil
	case "-N":
		return false, nil
	}
	return false, fmt.Errorf("%s: unary operator expected", op)
}

// binaryTest evaluates a op b, for test and [[ ]].
func (r *Runner) binaryTest(op, a, b string) (bool, error) {
	switch op {
	case "=", "==":
		return a == b, nil
	case "!=":
		return a != b, nil
	case "<":
		return a < b, nil
	case ">":
		return a > b, nil
	case "-eq", "-ne", "-lt", "-le", "-gt", "-ge":
		x, err := testInt(a)
		if err != nil {
			return false, err
		}
		y, err := testInt(b)
		if err != nil {
			return false, err
		}
		switch op {
		case "-eq":
			return x == y, nil
		case "-ne":
			return x != y, nil
		case "-lt":
			return x < y, nil
		case "-le":
			return x <= y, nil
		case "-gt":
			return x > y, nil
		}
		return x >= y, nil
	case "-nt", "-ot":
		ai, _, errA := r.stat(a)
		bi, _, errB := r.stat(b)
		if op == "-nt" {
			return errA == nil && (errB != nil || ai.ModTime().After(bi.ModTime())), nil
		}
		return errB == nil && (errA != nil || ai.ModTime().Before(bi.ModTime())), nil
	case "-ef":
		return r.abs(a) == r.abs(b), nil
	}
	return false, fmt.Errorf("%s: binary operator expected", op)
}

func testInt(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: integer expression expected", s)
	}
	return n, nil
}

var unaryOps = map[string]bool{
	"-a": true, "-b": true, "-c": true, "-d": true, "-e": true, "-f": true, "-g": true, "-h": true,
	"-k": true, "-n": true, "-o": true, "-p": true, "-r": true, "-s": true, "-t": true, "-u": true,
	"-v": true, "-w": true, "-x": true, "-z": true, "-G": true, "-L": true, "-N": true, "-O": true, "-S": true,
}

var binaryOps = map[string]bool{
	"=": true, "==": true, "!=": true, "<": true, ">": true, "-eq": true, "-ne": true, "-lt": true,
	"-le": true, "-gt": true, "-ge": true, "-nt": true, "-ot": true, "-ef": true,
}

// testArgs evaluates the arguments of test (or of [ without its ]).
func (r *Runner) testArgs(args []string) (bool, error) {
	p := &testParser{r: r, args: args}
	return p.eval(len(args))
}

type testParser struct {
	r    *Runner
	args []string
	pos  int
}

// eval follows POSIX's rules for up to four arguments, which settle what
// a lone "!" or "=" means, and parses longer expressions.
func (p *testParser) eval(n int) (bool, error) {
	a := p.args[p.pos:]
	switch n {
	case 0:
		return false, nil
	case 1:
		p.pos++
		return a[0] != "", nil
	case 2:
		if a[0] == "!" {
			p.pos += 2
			return a[1] == "", nil
		}
		if unaryOps[a[0]] {
			p.pos += 2
			return p.r.unaryTest(a[0], a[1])
		}
		return false, fmt.Errorf("%s: unary operator expected", a[0])
	case 3:
		if binaryOps[a[1]] {
			p.pos += 3
			return p.r.binaryTest(a[1], a[0], a[2])
		}
		if a[1] == "-a" || a[1] == "-o" {
			break
		}
		if a[0] == "!" {
			p.pos++
			v, err := p.eval(2)
			return !v, err
		}
		if a[0] == "(" && a[2] == ")" {
			p.pos += 3
			return a[1] != "", nil
		}
		return false, fmt.Errorf("%s: binary operator expected", a[1])
	case 4:
		if a[0] == "!" {
			p.pos++
			v, err := p.eval(3)
			return !v, err
		}
		if a[0] == "(" && a[3] == ")" {
			p.pos++
			v, err := p.eval(2)
			p.pos++
			return v, err
		}
	}
	v, err := p.or()
	if err == nil && p.pos < len(p.args) {
		err = fmt.Errorf("%s: unexpected argument", p.args[p.pos])
	}
	return v, err
}

func (p *testParser) or() (bool, error) {
	v, err := p.and()
	for err == nil && p.pos < len(p.args) && p.args[p.pos] == "-o" {
		p.pos++
		var w bool
		w, err = p.and()
		v = v || w
	}
	return v, err
}

func (p *testParser) and() (bool, error) {
	v, err := p.not()
	for err == nil && p.pos < len(p.args) && p.args[p.pos] == "-a" {
		p.pos++
		var w bool
		w, err = p.not()
		v = v && w
	}
	return v, err
}

func (p *testParser) not() (bool, error) {
	if p.pos < len(p.args) && p.args[p.pos] == "!" {
		p.pos++
		v, err := p.not()
		return !v, err
	}
	return p.primary()
}

func (p *testParser) primary() (bool, error) {
	a := p.args[p.pos:]
	switch {
	case len(a) == 0:
		return false, fmt.Errorf("argument expected")
	case a[0] == "(":
		p.pos++
		v, err := p.or()
		if err != nil {
			return false, err
		}
		if p.pos >= len(p.args) || p.args[p.pos] != ")" {
			return false, fmt.Errorf("`)' expected")
		}
		p.pos++
		return v, nil
	case len(a) >= 3 && binaryOps[a[1]]:
		p.pos += 3
		return p.r.binaryTest(a[1], a[0], a[2])
	case len(a) >= 2 && unaryOps[a[0]]:
		p.pos += 2
		return p.r.unaryTest(a[0], a[1])
	}
	p.pos++
	return a[0] != "", nil
}
