package shell

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// flow is a pending break, continue or return.
type flow int

const (
	flowNone flow = iota
	flowBreak
	flowContinue
	flowReturn
)

// fd is an open file descriptor of the shell.
type fd struct {
	r io.Reader
	w io.Writer
}

type options struct {
	errexit, nounset, pipefail, xtrace, noglob, noclobber bool
	nullglob, globstar, dotglob, nocaseglob, extglob      bool
}

// Runner is one shell (the script's, or a subshell): its variables,
// functions, options and open files.
type Runner struct {
	sh *shared

	vars map[string]expand.Variable
	// frames hold, for each function call, the values its locals hid:
	// nil for a variable that was unset.
	frames []map[string]*expand.Variable
	funcs  map[string]*syntax.Stmt
	traps  map[string]string

	cwd    string
	opts   options
	arg0   string
	params []string

	status    int
	flow      flow
	flowN     int // loops a break or continue has left to leave
	noErrExit int // > 0 in a condition, where set -e does not apply
	loops     int
	funcDepth int
	depth     int // nested calls, sources and evals

	fds [10]*fd

	line        int // the line of the command running, for messages
	substStatus int // the status of the last command substitution
	lastBg      int
	subshellLvl int
}

func newRunner(sh *shared) *Runner {
	r := &Runner{
		sh:    sh,
		vars:  map[string]expand.Variable{},
		funcs: map[string]*syntax.Stmt{},
		traps: map[string]string{},
		cwd:   sh.cfg.Dir,
		arg0:  Name,
	}
	for k, v := range sh.cfg.Env {
		r.vars[k] = expand.Variable{Set: true, Kind: expand.String, Str: v, Exported: true}
	}
	r.setString("PWD", r.cwd)
	r.exportVar("PWD")
	if _, ok := r.vars["IFS"]; !ok {
		r.vars["IFS"] = expand.Variable{Set: true, Kind: expand.String, Str: " \t\n"}
	}
	r.vars["OPTIND"] = expand.Variable{Set: true, Kind: expand.String, Str: "1"}
	return r
}

// subshell returns a copy of r that shares nothing it can change.
func (r *Runner) subshell() *Runner {
	c := *r
	c.vars = make(map[string]expand.Variable, len(r.vars))
	for k, v := range r.vars {
		c.vars[k] = cloneVar(v)
	}
	c.frames = slices.Clone(r.frames)
	c.funcs = maps.Clone(r.funcs)
	c.traps = map[string]string{} // traps are not inherited, except ignored ones
	c.params = slices.Clone(r.params)
	c.flow, c.flowN = flowNone, 0
	c.subshellLvl++
	return &c
}

func cloneVar(v expand.Variable) expand.Variable {
	v.List = slices.Clone(v.List)
	v.Indexes = slices.Clone(v.Indexes)
	if v.Map != nil {
		v.Map = maps.Clone(v.Map)
	}
	return v
}

func (r *Runner) stdin() io.Reader {
	if f := r.fds[0]; f != nil && f.r != nil {
		return f.r
	}
	return strings.NewReader("")
}

func (r *Runner) stdout() io.Writer {
	if f := r.fds[1]; f != nil && f.w != nil {
		return f.w
	}
	return io.Discard
}

func (r *Runner) stderr() io.Writer {
	if f := r.fds[2]; f != nil && f.w != nil {
		return f.w
	}
	return io.Discard
}

// errf prints a message of the shell's own, as bash does: "sh: line N: ...".
func (r *Runner) errf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.line > 0 {
		fmt.Fprintf(r.stderr(), "%s: line %d: %s\n", Name, r.line, msg)
		return
	}
	fmt.Fprintf(r.stderr(), "%s: %s\n", Name, msg)
}

// fatal prints a message and ends the shell with code.
func (r *Runner) fatal(code int, format string, args ...any) {
	r.errf(format, args...)
	panic(exitShell{code: code})
}

// Variables.

func (r *Runner) getString(name string) string {
	v := r.Get(name)
	return v.String()
}

// setString is not inlined: a copy of its expand.Variable read-modify-write
// at each of its 30 call sites was 3 KB gzip of the module.
//
//go:noinline
func (r *Runner) setString(name, value string) {
	v := r.vars[name]
	v.Set, v.Kind, v.Str, v.List, v.Map, v.Indexes = true, expand.String, value, nil, nil, nil
	r.vars[name] = v
}

func (r *Runner) exportVar(name string) {
	v := r.vars[name]
	v.Exported = true
	r.vars[name] = v
}

// setVar assigns a whole variable, keeping its attributes, unless it is
// read-only.
func (r *Runner) setVar(name string, v expand.Variable) error {
	old := r.vars[name]
	if old.ReadOnly {
		return fmt.Errorf("%s: readonly variable", name)
	}
	if len(v.Str) > maxValue {
		return fmt.Errorf("%s: value too large (over %d bytes)", name, maxValue)
	}
	if len(v.List) > maxElems || len(v.Map) > maxElems {
		return fmt.Errorf("%s: too many array elements (over %d)", name, maxElems)
	}
	v.Exported = v.Exported || old.Exported
	v.ReadOnly = v.ReadOnly || old.ReadOnly
	v.Local = old.Local
	r.vars[name] = v
	return nil
}

func (r *Runner) unsetVar(name string) error {
	old, ok := r.vars[name]
	if !ok {
		return nil
	}
	if old.ReadOnly {
		return fmt.Errorf("%s: cannot unset: readonly variable", name)
	}
	delete(r.vars, name)
	return nil
}

// makeLocal hides name's value for the rest of the function call.
func (r *Runner) makeLocal(name string) {
	if len(r.frames) == 0 {
		return
	}
	frame := r.frames[len(r.frames)-1]
	if _, saved := frame[name]; saved {
		return
	}
	if old, ok := r.vars[name]; ok {
		o := old
		frame[name] = &o
	} else {
		frame[name] = nil
	}
	v := r.vars[name]
	v.Local = true
	v.Exported = false
	r.vars[name] = v
}

func (r *Runner) popFrame() {
	frame := r.frames[len(r.frames)-1]
	r.frames = r.frames[:len(r.frames)-1]
	for name, old := range frame {
		if old == nil {
			delete(r.vars, name)
		} else {
			r.vars[name] = *old
		}
	}
}

// environ returns the exported variables, as a command sees them.
func (r *Runner) environ() map[string]string {
	env := map[string]string{}
	for k, v := range r.vars {
		if v.Exported && v.IsSet() {
			env[k] = v.String()
		}
	}
	return env
}

// Get implements expand.Environ, with the shell's special parameters.
func (r *Runner) Get(name string) expand.Variable {
	str := func(s string) expand.Variable { return expand.Variable{Set: true, Kind: expand.String, Str: s} }
	switch name {
	case "#":
		return str(strconv.Itoa(len(r.params)))
	case "@", "*":
		return expand.Variable{Set: true, Kind: expand.Indexed, List: r.params}
	case "?":
		return str(strconv.Itoa(r.status))
	case "$", "BASHPID":
		return str("1")
	case "PPID":
		return str("0")
	case "!":
		if r.lastBg == 0 {
			return expand.Variable{}
		}
		return str(strconv.Itoa(r.lastBg))
	case "-":
		return str(r.flags())
	case "0":
		return str(r.arg0)
	case "RANDOM":
		return str(strconv.Itoa(rand.IntN(32768)))
	case "SECONDS":
		return str(strconv.Itoa(int(r.sh.now().Sub(r.sh.started).Seconds())))
	case "BASH_SUBSHELL":
		return str(strconv.Itoa(r.subshellLvl))
	case "FUNCNAME":
		if v, ok := r.vars[name]; ok {
			return v
		}
		return expand.Variable{}
	}
	if name != "" && name[0] >= '1' && name[0] <= '9' {
		if n, err := strconv.Atoi(name); err == nil {
			if n <= len(r.params) {
				return str(r.params[n-1])
			}
			return expand.Variable{}
		}
	}
	return r.vars[name]
}

func (r *Runner) flags() string {
	var b []byte
	if r.opts.errexit {
		b = append(b, 'e')
	}
	if r.opts.noglob {
		b = append(b, 'f')
	}
	b = append(b, 'h')
	if r.opts.nounset {
		b = append(b, 'u')
	}
	if r.opts.xtrace {
		b = append(b, 'x')
	}
	b = append(b, "B"...)
	return string(b)
}

// Each implements expand.Environ.
func (r *Runner) Each(f func(name string, vr expand.Variable) bool) {
	for _, name := range slices.Sorted(maps.Keys(r.vars)) {
		if !f(name, r.vars[name]) {
			return
		}
	}
}

// Set implements expand.WriteEnviron, for the assignments of expansions
// (${x:=v}, $((x+=1))).
func (r *Runner) Set(name string, vr expand.Variable) error {
	if !vr.IsSet() {
		return r.unsetVar(name)
	}
	if vr.Kind == expand.KeepValue {
		old := r.vars[name]
		old.Exported = old.Exported || vr.Exported
		old.ReadOnly = old.ReadOnly || vr.ReadOnly
		r.vars[name] = old
		return nil
	}
	return r.setVar(name, vr)
}
