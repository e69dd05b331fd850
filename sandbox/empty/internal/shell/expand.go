package shell

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// config is a fresh expansion config: expand keeps state in it during a
// call, and a command substitution expands again from inside that call.
func (r *Runner) config() *expand.Config {
	c := &expand.Config{
		Env:        r,
		CmdSubst:   r.cmdSubst,
		ProcSubst:  r.procSubst,
		GlobStar:   r.opts.globstar,
		DotGlob:    r.opts.dotglob,
		NoCaseGlob: r.opts.nocaseglob,
		NullGlob:   r.opts.nullglob,
		NoUnset:    r.opts.nounset,
		ExtGlob:    r.opts.extglob,
	}
	if !r.opts.noglob {
		c.ReadDir2 = r.globReadDir
	}
	return c
}

// expandFail ends the shell over an expansion error, as a non-interactive
// bash does: 127 for an unset parameter (${x:?}, set -u), 1 otherwise.
func (r *Runner) expandFail(err error) {
	var ue expand.UnsetParameterError
	if errors.As(err, &ue) {
		r.fatal(127, "%s", err)
	}
	r.fatal(1, "%s", err)
}

// expandPanic turns a panic of mvdan.cc/sh's expansion (it has a few on
// odd input, such as ${assoc[!0]}) into a failed expansion, as bash would
// fail it, rather than a trap of the module.
func (r *Runner) expandPanic() {
	p := recover()
	if p == nil {
		return
	}
	switch p.(type) {
	case exitShell, stopRun, brokenPipe:
		panic(p)
	}
	r.fatal(1, "bad substitution")
}

func (r *Runner) fields(words ...*syntax.Word) []string {
	defer r.expandPanic()
	for i, w := range words {
		if fixed := r.fixAssocLength(w); fixed != w {
			words = append([]*syntax.Word(nil), words...)
			words[i] = fixed
		}
	}
	f, err := expand.Fields(r.config(), words...)
	if err != nil {
		r.expandFail(err)
	}
	return f
}

func (r *Runner) literal(w *syntax.Word) string {
	defer r.expandPanic()
	s, err := expand.Literal(r.config(), r.fixAssocLength(w))
	if err != nil {
		r.expandFail(err)
	}
	return s
}

func (r *Runner) document(w *syntax.Word) string {
	defer r.expandPanic()
	s, err := expand.Document(r.config(), w)
	if err != nil {
		r.expandFail(err)
	}
	return s
}

func (r *Runner) pattern(w *syntax.Word) string {
	defer r.expandPanic()
	s, err := expand.Pattern(r.config(), w)
	if err != nil {
		r.expandFail(err)
	}
	return s
}

func (r *Runner) arith(x syntax.ArithmExpr) int {
	defer r.expandPanic()
	n, err := expand.Arithm(r.config(), x)
	if err != nil {
		r.fatal(1, "%s", arithErr(err))
	}
	return n
}

func arithErr(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "division by zero") {
		return "division by 0"
	}
	return msg
}

// fixAssocLength returns w with each ${#name[@]} of an associative array
// replaced by the count of its elements, which expand gets wrong (it
// counts 1). w itself is returned when it has none: the tree is shared.
func (r *Runner) fixAssocLength(w *syntax.Word) *syntax.Word {
	if w == nil {
		return nil
	}
	parts, changed := r.fixParts(w.Parts)
	if !changed {
		return w
	}
	return &syntax.Word{Parts: parts}
}

func (r *Runner) fixParts(parts []syntax.WordPart) ([]syntax.WordPart, bool) {
	var out []syntax.WordPart
	for i, p := range parts {
		var repl syntax.WordPart
		switch p := p.(type) {
		case *syntax.ParamExp:
			if p.Length && p.Param != nil && p.Index != nil {
				if lit, ok := p.Index.(*syntax.Word); ok && (lit.Lit() == "@" || lit.Lit() == "*") {
					if v := r.vars[p.Param.Value]; v.Kind == expand.Associative {
						repl = &syntax.Lit{ValuePos: p.Pos(), ValueEnd: p.End(), Value: strconv.Itoa(len(v.Map))}
					}
				}
			}
		case *syntax.DblQuoted:
			if inner, changed := r.fixParts(p.Parts); changed {
				q := *p
				q.Parts = inner
				repl = &q
			}
		}
		if repl != nil && out == nil {
			out = append(make([]syntax.WordPart, 0, len(parts)), parts[:i]...)
		}
		if out != nil {
			if repl == nil {
				repl = p
			}
			out = append(out, repl)
		}
	}
	if out == nil {
		return parts, false
	}
	return out, true
}

// cmdSubst runs $(...) in a subshell, its output going to w.
func (r *Runner) cmdSubst(w io.Writer, cs *syntax.CmdSubst) error {
	r.sh.step()
	if r.depth >= maxDepth {
		r.fatal(1, "maximum nesting depth exceeded (%d)", maxDepth)
	}
	lw := &limitWriter{w: w, max: maxValue}
	// $(< file) is the file's content, with no command run.
	if len(cs.Stmts) == 1 && cs.Stmts[0].Cmd == nil && len(cs.Stmts[0].Redirs) == 1 && cs.Stmts[0].Redirs[0].Op == syntax.RdrIn {
		name := r.literal(cs.Stmts[0].Redirs[0].Word)
		b, err := r.readFile(name)
		if err != nil {
			r.errf("%s: %s", name, errText(err))
			r.substStatus = 1
			return nil
		}
		r.substStatus = 0
		_, err = lw.Write(b)
		return err
	}
	sub := r.subshell()
	sub.depth++
	sub.fds[1] = &fd{w: lw}
	sub.guard(func() { sub.stmts(cs.Stmts) })
	r.substStatus = sub.status
	if lw.over {
		r.fatal(1, "command substitution: output over %d bytes", maxValue)
	}
	return nil
}

// procSubst runs <(...) into a file under /tmp and returns its path.
func (r *Runner) procSubst(ps *syntax.ProcSubst) (string, error) {
	if ps.Op != syntax.CmdIn {
		return "", errors.New("process substitution >(...) is not supported")
	}
	r.sh.psubs++
	name := fmt.Sprintf("/tmp/.psub-%d", r.sh.psubs)
	t, err := r.resolve(name)
	if err != nil || t.fs == nil {
		return "", fmt.Errorf("process substitution needs /tmp: %v", err)
	}
	w, err := t.fs.Create(t.rel, false)
	if err != nil {
		return "", fmt.Errorf("process substitution: %s", errText(err))
	}
	sub := r.subshell()
	sub.depth++
	sub.fds[1] = &fd{w: w}
	sub.guard(func() { sub.stmts(ps.Stmts) })
	r.sh.tempFiles = append(r.sh.tempFiles, t)
	return name, nil
}

// globReadDir lists a directory for pathname expansion.
func (r *Runner) globReadDir(dir string) ([]fs.DirEntry, error) {
	t, err := r.resolve(dir)
	if err != nil {
		return nil, err
	}
	if t.fs == nil {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrInvalid}
	}
	infos, err := t.fs.ReadDir(t.rel)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, len(infos))
	for i, in := range infos {
		out[i] = in
	}
	return out, nil
}

// limitWriter passes on at most max bytes and remembers it dropped some.
type limitWriter struct {
	w    io.Writer
	max  int
	n    int
	over bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n+len(p) > l.max {
		l.over = true
		return 0, errTooMuchOutput
	}
	l.n += len(p)
	return l.w.Write(p)
}

var errTooMuchOutput = errors.New("output too large")

// atoi parses a shell number, as test and the like take it.
func atoi(s string) (int, bool) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	return n, err == nil
}
