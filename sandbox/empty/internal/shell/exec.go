package shell

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/pattern"
	"mvdan.cc/sh/v3/syntax"
)

func (r *Runner) stmts(list []*syntax.Stmt) {
	for _, st := range list {
		if r.flow != flowNone {
			return
		}
		r.stmt(st)
	}
}

func (r *Runner) stmt(st *syntax.Stmt) {
	r.sh.step()
	r.line = int(st.Pos().Line())
	if st.Background || st.Disown || st.Coprocess {
		// No job control: the command runs to its end now, in a
		// subshell, and $! names it.
		sub := r.subshell()
		plain := *st
		plain.Background, plain.Disown, plain.Coprocess = false, false, false
		sub.guard(func() { sub.stmt(&plain) })
		r.sh.nextPID++
		r.lastBg = r.sh.nextPID
		r.status = 0
		return
	}
	if st.Negated {
		r.noErrExit++
	}
	switch cm := st.Cmd.(type) {
	case *syntax.CallExpr:
		r.call(st, cm)
	case nil:
		r.substStatus = 0
		restore, ok := r.redirect(st.Redirs)
		if ok {
			restore()
			r.status = 0
		} else {
			r.status = 1
		}
	default:
		restore, ok := r.redirect(st.Redirs)
		if !ok {
			r.status = 1
			break
		}
		func() {
			defer restore()
			r.compound(cm)
		}()
	}
	if st.Negated {
		r.noErrExit--
		if r.status == 0 {
			r.status = 1
		} else {
			r.status = 0
		}
	}
}

// errexit ends the shell when set -e applies to a command that failed.
func (r *Runner) errexit() {
	if r.status != 0 && r.opts.errexit && r.noErrExit == 0 && r.flow == flowNone {
		panic(exitShell{code: r.status})
	}
}

func (r *Runner) compound(cm syntax.Command) {
	switch cm := cm.(type) {
	case *syntax.Block:
		r.stmts(cm.Stmts)
	case *syntax.Subshell:
		sub := r.subshell()
		sub.guard(func() { sub.stmts(cm.Stmts) })
		r.status = sub.status
		r.errexit()
	case *syntax.BinaryCmd:
		switch cm.Op {
		case syntax.AndStmt, syntax.OrStmt:
			r.noErrExit++
			r.stmt(cm.X)
			r.noErrExit--
			if r.flow != flowNone {
				return
			}
			if (r.status == 0) == (cm.Op == syntax.AndStmt) {
				r.stmt(cm.Y)
			}
		default:
			r.pipeline(cm)
		}
	case *syntax.IfClause:
		r.ifClause(cm)
	case *syntax.WhileClause:
		r.whileClause(cm)
	case *syntax.ForClause:
		r.forClause(cm)
	case *syntax.CaseClause:
		r.caseClause(cm)
	case *syntax.FuncDecl:
		if cm.Name == nil {
			r.errf("syntax error: a function needs a name")
			r.status = 2
			return
		}
		name := r.literal(&syntax.Word{Parts: []syntax.WordPart{cm.Name}})
		r.funcs[name] = cm.Body
		r.status = 0
	case *syntax.ArithmCmd:
		if r.arith(cm.X) != 0 {
			r.status = 0
		} else {
			r.status = 1
		}
		r.errexit()
	case *syntax.TestClause:
		r.status = r.testClause(cm.X)
		r.errexit()
	case *syntax.DeclClause:
		r.status = r.declClause(cm)
		r.errexit()
	case *syntax.LetClause:
		r.status = 1
		for _, x := range cm.Exprs {
			if r.arith(x) != 0 {
				r.status = 0
			} else {
				r.status = 1
			}
		}
		r.errexit()
	case *syntax.TimeClause:
		start := r.sh.now()
		if cm.Stmt != nil {
			r.stmt(cm.Stmt)
		}
		d := r.sh.now().Sub(start)
		fmt.Fprintf(r.stderr(), "\nreal\t%dm%.3fs\nuser\t0m0.000s\nsys\t0m0.000s\n", int(d.Minutes()), d.Seconds()-float64(int(d.Minutes())*60))
	default:
		r.errf("%s: not supported", syntaxName(cm))
		r.status = 2
	}
}

func syntaxName(cm syntax.Command) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", cm), "*syntax.")
}

func (r *Runner) cond(stmts []*syntax.Stmt) bool {
	r.noErrExit++
	r.stmts(stmts)
	r.noErrExit--
	return r.status == 0
}

func (r *Runner) ifClause(cm *syntax.IfClause) {
	for c := cm; c != nil; c = c.Else {
		if len(c.Cond) == 0 { // else
			r.stmts(c.Then)
			return
		}
		ok := r.cond(c.Cond)
		if r.flow != flowNone {
			return
		}
		if ok {
			r.stmts(c.Then)
			return
		}
	}
	r.status = 0
}

// loopFlow handles a break or continue at the end of a loop's round, and
// reports whether the loop ends.
func (r *Runner) loopFlow() bool {
	switch r.flow {
	case flowBreak:
		if r.flowN > 1 {
			r.flowN--
		} else {
			r.flow = flowNone
		}
		return true
	case flowContinue:
		if r.flowN > 1 {
			r.flowN--
			return true
		}
		r.flow = flowNone
		return false
	case flowReturn:
		return true
	}
	return false
}

func (r *Runner) whileClause(cm *syntax.WhileClause) {
	last := 0
	for {
		r.sh.step()
		ok := r.cond(cm.Cond)
		if r.flow != flowNone {
			if r.loopFlow() {
				break
			}
			continue
		}
		if ok == cm.Until {
			break
		}
		r.loops++
		r.stmts(cm.Do)
		r.loops--
		last = r.status
		if r.loopFlow() {
			break
		}
	}
	if r.flow == flowNone {
		r.status = last
	}
}

func (r *Runner) forClause(cm *syntax.ForClause) {
	last := 0
	switch loop := cm.Loop.(type) {
	case *syntax.WordIter:
		var items []string
		if loop.InPos.IsValid() {
			items = r.fields(loop.Items...)
		} else {
			items = append([]string(nil), r.params...)
		}
		name := loop.Name.Value
		for _, item := range items {
			r.sh.step()
			if err := r.setVar(name, expand.Variable{Set: true, Kind: expand.String, Str: item}); err != nil {
				r.errf("%s", err)
				r.status = 1
				return
			}
			r.loops++
			r.stmts(cm.Do)
			r.loops--
			last = r.status
			if r.loopFlow() {
				break
			}
		}
	case *syntax.CStyleLoop:
		if loop.Init != nil {
			r.arith(loop.Init)
		}
		for {
			r.sh.step()
			if loop.Cond != nil && r.arith(loop.Cond) == 0 {
				break
			}
			r.loops++
			r.stmts(cm.Do)
			r.loops--
			last = r.status
			if r.loopFlow() {
				break
			}
			if loop.Post != nil {
				r.arith(loop.Post)
			}
		}
	}
	if r.flow == flowNone {
		r.status = last
	}
}

func (r *Runner) caseClause(cm *syntax.CaseClause) {
	word := r.literal(cm.Word)
	r.status = 0
	matched := false
	for _, item := range cm.Items {
		if !matched {
			for _, p := range item.Patterns {
				if r.match(r.pattern(p), word) {
					matched = true
					break
				}
			}
		}
		if !matched {
			continue
		}
		r.stmts(item.Stmts)
		switch item.Op {
		case syntax.Fallthrough: // ;& runs the next body too
			continue
		case syntax.Resume: // ;;& tests the next patterns
			matched = false
			continue
		}
		return
	}
}

// match reports whether s matches the shell pattern pat as a whole.
func (r *Runner) match(pat, s string) bool {
	rx := r.sh.compile(pat, r.opts.extglob)
	return rx != nil && rx.MatchString(s)
}

// compile turns a shell pattern into a regexp, caching it: loops match the
// same patterns over and over. nil for a pattern that does not compile.
func (s *shared) compile(pat string, ext bool) *regexp.Regexp {
	key := pat
	if ext {
		key = "\x00" + pat
	}
	if rx, ok := s.patterns[key]; ok {
		return rx
	}
	mode := pattern.EntireString
	if ext {
		mode |= pattern.ExtendedOperators
	}
	var rx *regexp.Regexp
	if expr, err := pattern.Regexp(pat, mode); err == nil {
		rx, _ = regexp.Compile(expr)
	}
	if s.patterns == nil {
		s.patterns = map[string]*regexp.Regexp{}
	}
	if len(s.patterns) > 1000 {
		clear(s.patterns)
	}
	s.patterns[key] = rx
	return rx
}

// pipeline runs the stages of a | b | c one after the other, each in a
// subshell reading what the one before it left in a bounded buffer.
func (r *Runner) pipeline(cm *syntax.BinaryCmd) {
	var stages []*syntax.Stmt
	var all []bool // stage i's stderr goes down the pipe too (|&)
	var flatten func(st *syntax.Stmt, op syntax.BinCmdOperator)
	flatten = func(st *syntax.Stmt, op syntax.BinCmdOperator) {
		if b, ok := st.Cmd.(*syntax.BinaryCmd); ok && (b.Op == syntax.Pipe || b.Op == syntax.PipeAll) && !st.Negated && len(st.Redirs) == 0 && !st.Background {
			flatten(b.X, b.Op)
			flatten(b.Y, op)
			return
		}
		stages = append(stages, st)
		all = append(all, op == syntax.PipeAll)
	}
	flatten(cm.X, cm.Op)
	flatten(cm.Y, 0)

	in := r.stdin()
	statuses := make([]string, len(stages))
	codes := make([]int, len(stages))
	for i, st := range stages {
		sub := r.subshell()
		sub.fds[0] = &fd{r: in}
		var buf *pipeBuf
		if i < len(stages)-1 {
			buf = &pipeBuf{max: maxPipe}
			sub.fds[1] = &fd{w: buf}
			if all[i] {
				sub.fds[2] = sub.fds[1]
			}
		}
		sub.stage(st)
		codes[i] = sub.status
		statuses[i] = strconv.Itoa(sub.status)
		if buf != nil {
			if buf.full {
				r.errf("pipe buffer full (%d bytes): the writer was stopped", maxPipe)
			}
			in = bytes.NewReader(buf.Bytes())
		}
	}
	r.status = codes[len(codes)-1]
	if r.opts.pipefail {
		for _, c := range codes {
			if c != 0 {
				r.status = c
			}
		}
	}
	r.vars["PIPESTATUS"] = expand.Variable{Set: true, Kind: expand.Indexed, List: statuses}
	r.errexit()
}

// stage runs one stage of a pipeline, which a full pipe stops as SIGPIPE
// would (status 141).
func (r *Runner) stage(st *syntax.Stmt) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(brokenPipe); ok {
				r.status = 141
				return
			}
			panic(p)
		}
	}()
	r.guard(func() { r.stmt(st) })
}

// pipeBuf is the buffer between two stages of a pipeline. It does not
// embed a bytes.Buffer: io.WriteString would find the buffer's own
// WriteString and write past the bound.
type pipeBuf struct {
	buf  bytes.Buffer
	max  int
	full bool
}

func (p *pipeBuf) Write(b []byte) (int, error) {
	if p.buf.Len()+len(b) > p.max {
		p.full = true
		return 0, errBrokenPipe
	}
	return p.buf.Write(b)
}

func (p *pipeBuf) Bytes() []byte { return p.buf.Bytes() }

// call runs a simple command: assignments, words, redirections.
func (r *Runner) call(st *syntax.Stmt, ce *syntax.CallExpr) {
	r.substStatus = 0
	args := r.fields(ce.Args...)
	if len(args) == 0 {
		status := 0
		for _, as := range ce.Assigns {
			if err := r.assign(as, false); err != nil {
				r.errf("%s", err)
				status = 1
			}
		}
		restore, ok := r.redirect(st.Redirs)
		if !ok {
			r.status = 1
			r.errexit()
			return
		}
		restore()
		if status == 0 {
			status = r.substStatus
		}
		r.status = status
		r.errexit()
		return
	}
	restore, ok := r.redirect(st.Redirs)
	if !ok {
		r.status = 1
		r.errexit()
		return
	}
	if len(args) == 1 && args[0] == "exec" {
		// exec with only redirections keeps them for the rest of the shell.
		r.status = 0
		return
	}
	defer restore()
	if r.opts.xtrace {
		r.trace(ce.Assigns, args)
	}
	r.exec(args, ce.Assigns)
	r.errexit()
}

func (r *Runner) trace(assigns []*syntax.Assign, args []string) {
	var b []byte
	b = append(b, "+"...)
	for _, as := range assigns {
		b = append(b, " "+as.Name.Value+"="+quote(r.literal(as.Value))...)
	}
	for _, a := range args {
		b = append(b, " "+quote(a)...)
	}
	b = append(b, "\n"...)
	r.stderr().Write(b)
}

// quote quotes s as bash's xtrace and printf %q do, when it needs it.
func quote(s string) string {
	if s == "" {
		return "''"
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-./=:,+@%^", c)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// exec runs args with the temporary assignments of its simple command.
func (r *Runner) exec(args []string, assigns []*syntax.Assign) {
	if len(assigns) > 0 {
		saved := map[string]*expand.Variable{}
		for _, as := range assigns {
			name := as.Name.Value
			if _, ok := saved[name]; !ok {
				if v, ok := r.vars[name]; ok {
					saved[name] = &v
				} else {
					saved[name] = nil
				}
			}
			if err := r.assign(as, false); err != nil {
				r.errf("%s", err)
				r.status = 1
				return
			}
			r.exportVar(name)
		}
		defer func() {
			for name, v := range saved {
				if v == nil {
					delete(r.vars, name)
				} else {
					r.vars[name] = *v
				}
			}
		}()
	}
	name := args[0]
	if body, ok := r.funcs[name]; ok {
		r.callFunc(name, body, args)
		return
	}
	if b, ok := builtins[name]; ok {
		r.status = r.runBuiltin(b, args)
		return
	}
	r.status = r.runCommand(args)
}

// runBuiltin runs a builtin, whose own bugs fail it alone.
func (r *Runner) runBuiltin(b builtin, args []string) (code int) {
	defer r.catchBug(args[0], &code)
	return b.run(r, args)
}

func (r *Runner) catchBug(name string, code *int) {
	p := recover()
	if p == nil {
		return
	}
	switch p.(type) {
	case exitShell, stopRun, brokenPipe:
		panic(p)
	}
	if rethrowBugs {
		panic(p)
	}
	fmt.Fprintf(r.stderr(), "%s: internal error: %v\n", name, p)
	*code = 2
}

func (r *Runner) callFunc(name string, body *syntax.Stmt, args []string) {
	if r.depth >= maxDepth {
		r.fatal(1, "%s: maximum function nesting level exceeded (%d)", name, maxDepth)
	}
	oldParams, oldLoops := r.params, r.loops
	oldNames := r.vars["FUNCNAME"]
	r.params = args[1:]
	r.loops = 0
	r.frames = append(r.frames, map[string]*expand.Variable{})
	r.vars["FUNCNAME"] = expand.Variable{Set: true, Kind: expand.Indexed, List: append([]string{name}, oldNames.List...)}
	r.depth++
	r.funcDepth++
	defer func() {
		r.depth--
		r.funcDepth--
		r.popFrame()
		r.params, r.loops = oldParams, oldLoops
		if oldNames.IsSet() {
			r.vars["FUNCNAME"] = oldNames
		} else {
			delete(r.vars, "FUNCNAME")
		}
	}()
	r.stmt(body)
	if r.flow == flowReturn {
		r.flow = flowNone
	}
}

// runCommand runs a command that is not a function or a builtin of the
// shell: one of the commands, or a script file.
func (r *Runner) runCommand(args []string) int {
	if len(args) == 0 {
		return 0
	}
	name := args[0]
	if strings.Contains(name, "/") {
		if base := name[strings.LastIndexByte(name, '/')+1:]; systemDir(name[:len(name)-len(base)]) {
			if c, ok := commandFor(base); ok {
				return r.runUtility(c, append([]string{base}, args[1:]...))
			}
		}
		return r.runScriptFile(name, args)
	}
	if c, ok := commandFor(name); ok {
		return r.runUtility(c, args)
	}
	r.errf("%s: command not found", name)
	return 127
}

// systemDir reports whether dir is one where the commands live, so that
// /usr/bin/env and /bin/echo find them.
func systemDir(dir string) bool {
	switch dir {
	case "/bin/", "/usr/bin/", "/usr/local/bin/", "/sbin/", "/usr/sbin/":
		return true
	}
	return false
}

// runScriptFile runs an executable file of the sandbox as a shell script.
func (r *Runner) runScriptFile(name string, args []string) int {
	in, t, err := r.stat(name)
	if err != nil {
		r.errf("%s: %s", name, errText(err))
		if isNotExist(err) {
			return 127
		}
		return 126
	}
	if in.IsDir() {
		r.errf("%s: Is a directory", name)
		return 126
	}
	if t.fs == nil || in.Mode()&0o111 == 0 {
		r.errf("%s: Permission denied", name)
		return 126
	}
	b, err := t.fs.ReadFile(t.rel)
	if err != nil {
		r.errf("%s: %s", name, errText(err))
		return 126
	}
	src := string(b)
	if strings.HasPrefix(src, "#!") {
		line, _, _ := strings.Cut(src, "\n")
		fields := strings.Fields(line[2:])
		interp := ""
		if len(fields) > 0 {
			interp = fields[0][strings.LastIndexByte(fields[0], '/')+1:]
			if interp == "env" && len(fields) > 1 {
				interp = fields[1]
			}
		}
		switch interp {
		case "sh", "bash", "dash", "ash", "zsh", "ksh":
		default:
			r.errf("%s: %s: bad interpreter: only shell scripts run in this sandbox", name, strings.TrimSpace(line[2:]))
			return 126
		}
	}
	return r.runScript(src, name, args[1:], nil)
}

// runScript runs src in a child shell, as sh file does: a subshell that
// sees only exported variables and no functions.
func (r *Runner) runScript(src, name string, params []string, setup func(*Runner) int) int {
	if r.depth >= maxDepth {
		r.errf("%s: maximum nesting depth exceeded (%d)", name, maxDepth)
		return 1
	}
	file, err := parse(src)
	if err != nil {
		fmt.Fprintf(r.stderr(), "%s: %s\n", name, err)
		return 2
	}
	child := newRunner(r.sh)
	child.vars = map[string]expand.Variable{}
	for k, v := range r.vars {
		if v.Exported {
			child.vars[k] = cloneVar(v)
		}
	}
	child.cwd = r.cwd
	child.setString("PWD", r.cwd)
	child.fds = r.fds
	child.arg0 = name
	child.params = params
	child.depth = r.depth + 1
	child.subshellLvl = r.subshellLvl + 1
	if setup != nil {
		if code := setup(child); code != 0 {
			return code
		}
	}
	return child.runTop(file.Stmts)
}

// evalString runs src in r itself, as eval and source do.
func (r *Runner) evalString(src, what string) int {
	if r.depth >= maxDepth {
		r.errf("%s: maximum nesting depth exceeded (%d)", what, maxDepth)
		return 1
	}
	file, err := parse(src)
	if err != nil {
		r.errf("%s: %s", what, err)
		return 2
	}
	r.depth++
	defer func() { r.depth-- }()
	r.status = 0
	r.stmts(file.Stmts)
	return r.status
}
