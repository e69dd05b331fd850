package shell

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// builtin is a command of the shell itself. external ones exist as
// programs too (echo, printf, test, ...), so xargs, find -exec and env can
// run them.
type builtin struct {
	run      func(r *Runner, args []string) int
	external bool
}

var builtins map[string]builtin

func init() {
	builtins = map[string]builtin{
		":":         {run: func(*Runner, []string) int { return 0 }},
		"true":      {run: func(*Runner, []string) int { return 0 }, external: true},
		"false":     {run: func(*Runner, []string) int { return 1 }, external: true},
		"echo":      {run: biEcho, external: true},
		"printf":    {run: biPrintf, external: true},
		"pwd":       {run: biPwd, external: true},
		"test":      {run: biTest, external: true},
		"[":         {run: biTest, external: true},
		"cd":        {run: biCd},
		"export":    {run: biDeclare("export")},
		"readonly":  {run: biDeclare("readonly")},
		"declare":   {run: biDeclare("declare")},
		"typeset":   {run: biDeclare("typeset")},
		"local":     {run: biDeclare("local")},
		"unset":     {run: biUnset},
		"set":       {run: biSet},
		"shopt":     {run: biShopt},
		"shift":     {run: biShift},
		"return":    {run: biReturn},
		"break":     {run: biBreak(flowBreak)},
		"continue":  {run: biBreak(flowContinue)},
		"exit":      {run: biExit},
		"read":      {run: biRead},
		"mapfile":   {run: biMapfile},
		"readarray": {run: biMapfile},
		"source":    {run: biSource},
		".":         {run: biSource},
		"eval":      {run: biEval},
		"let":       {run: biLet},
		"type":      {run: biType},
		"command":   {run: biCommand},
		"builtin":   {run: biBuiltin},
		"exec":      {run: biExec},
		"trap":      {run: biTrap},
		"getopts":   {run: biGetopts},
		"wait":      {run: func(*Runner, []string) int { return 0 }},
		"alias":     {run: biAlias},
		"unalias":   {run: func(*Runner, []string) int { return 0 }},
		"hash":      {run: func(*Runner, []string) int { return 0 }},
		"umask":     {run: biUmask},
		"jobs":      {run: func(*Runner, []string) int { return 0 }},
		"times":     {run: biTimes},
		"kill":      {run: biKill, external: true},
		"sh":        {run: biSh, external: true},
		"bash":      {run: biSh, external: true},
	}
}

// write writes s to w as a command's output; a full pipe ends the stage.
func write(w io.Writer, s string) error {
	_, err := io.WriteString(w, s)
	if errors.Is(err, errBrokenPipe) {
		panic(brokenPipe{})
	}
	return err
}

var errBrokenPipe = errors.New("broken pipe")

// out writes a builtin's output, reporting a write error as bash does.
func (r *Runner) out(name, s string) int {
	if err := write(r.stdout(), s); err != nil {
		r.errf("%s: write error: %s", name, errText(err))
		return 1
	}
	return 0
}

func biEcho(r *Runner, args []string) int {
	args = args[1:]
	newline, escapes := true, false
opts:
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' {
		for _, c := range args[0][1:] {
			if c != 'n' && c != 'e' && c != 'E' {
				break opts
			}
		}
		for _, c := range args[0][1:] {
			switch c {
			case 'n':
				newline = false
			case 'e':
				escapes = true
			case 'E':
				escapes = false
			}
		}
		args = args[1:]
	}
	s := strings.Join(args, " ")
	if escapes {
		var stop bool
		if s, stop = expandEscapes(s); stop {
			newline = false
		}
	}
	if newline {
		s += "\n"
	}
	return r.out("echo", s)
}

func biPrintf(r *Runner, args []string) int {
	args = args[1:]
	varName := ""
	if len(args) >= 2 && args[0] == "-v" {
		varName, args = args[1], args[2:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		r.errf("printf: usage: printf [-v var] format [arguments]")
		return 2
	}
	s, errs, _ := printfFormat(args[0], args[1:])
	status := 0
	for _, e := range errs {
		r.errf("printf: %s", e)
		status = 1
	}
	if varName != "" {
		if err := r.setVar(varName, expand.Variable{Set: true, Kind: expand.String, Str: s}); err != nil {
			r.errf("printf: %s", err)
			return 1
		}
		return status
	}
	if c := r.out("printf", s); c != 0 {
		return c
	}
	return status
}

func biPwd(r *Runner, _ []string) int { return r.out("pwd", r.cwd+"\n") }

func biTest(r *Runner, args []string) int {
	name := args[0]
	args = args[1:]
	if name == "[" {
		if len(args) == 0 || args[len(args)-1] != "]" {
			r.errf("[: missing `]'")
			return 2
		}
		args = args[:len(args)-1]
	}
	ok, err := r.testArgs(args)
	if err != nil {
		r.errf("%s: %s", name, err)
		return 2
	}
	if ok {
		return 0
	}
	return 1
}

func biCd(r *Runner, args []string) int {
	args = args[1:]
	for len(args) > 0 && (args[0] == "-P" || args[0] == "-L" || args[0] == "--") {
		args = args[1:]
	}
	dir := ""
	switch {
	case len(args) == 0:
		dir = r.getString("HOME")
		if dir == "" {
			r.errf("cd: HOME not set")
			return 1
		}
	case len(args) > 1:
		r.errf("cd: too many arguments")
		return 1
	case args[0] == "-":
		dir = r.getString("OLDPWD")
		if dir == "" {
			r.errf("cd: OLDPWD not set")
			return 1
		}
	default:
		dir = args[0]
	}
	in, t, err := r.stat(dir)
	if err != nil {
		r.errf("cd: %s: %s", dir, errText(err))
		return 1
	}
	if !in.IsDir() {
		r.errf("cd: %s: Not a directory", dir)
		return 1
	}
	r.setString("OLDPWD", r.cwd)
	r.cwd = t.abs
	r.setString("PWD", r.cwd)
	if len(args) == 1 && args[0] == "-" {
		return r.out("cd", r.cwd+"\n")
	}
	return 0
}

func biDeclare(variant string) func(r *Runner, args []string) int {
	return func(r *Runner, args []string) int {
		var flags []string
		var items []declItem
		for _, a := range args[1:] {
			if len(items) == 0 && len(a) > 1 && (a[0] == '-' || a[0] == '+') {
				flags = append(flags, a)
				continue
			}
			items = append(items, declItem{word: a})
		}
		return r.declare(variant, flags, items)
	}
}

func biUnset(r *Runner, args []string) int {
	funcs := false
	status := 0
	for _, a := range args[1:] {
		switch a {
		case "-f":
			funcs = true
			continue
		case "-v", "--":
			continue
		}
		if funcs {
			delete(r.funcs, a)
			continue
		}
		if name, idx, ok := strings.Cut(a, "["); ok && strings.HasSuffix(idx, "]") {
			idx = strings.TrimSuffix(idx, "]")
			v := r.vars[name]
			switch v.Kind {
			case expand.Associative:
				delete(v.Map, idx)
			case expand.Indexed:
				if n, ok := atoi(idx); ok {
					v = unsetIndex(v, n)
				}
			}
			r.vars[name] = v
			continue
		}
		if err := r.unsetVar(a); err != nil {
			r.errf("unset: %s", err)
			status = 1
			continue
		}
		if _, isVar := r.vars[a]; !isVar {
			delete(r.funcs, a) // unset name falls back to a function
		}
	}
	return status
}

// option returns the shell option name (set -o name) and whether it is one.
func (r *Runner) option(name string) (on, ok bool) {
	if p := r.optionPtr(name); p != nil {
		return *p, true
	}
	return false, false
}

func (r *Runner) optionPtr(name string) *bool {
	switch name {
	case "errexit", "e":
		return &r.opts.errexit
	case "nounset", "u":
		return &r.opts.nounset
	case "pipefail":
		return &r.opts.pipefail
	case "xtrace", "x":
		return &r.opts.xtrace
	case "noglob", "f":
		return &r.opts.noglob
	case "noclobber", "C":
		return &r.opts.noclobber
	}
	return nil
}

var ignoredOptions = map[string]bool{
	"v": true, "verbose": true, "h": true, "hashall": true, "B": true, "braceexpand": true,
	"m": true, "monitor": true, "posix": true, "a": true, "allexport": true, "E": true, "errtrace": true,
	"T": true, "functrace": true, "H": true, "histexpand": true, "emacs": true, "vi": true, "P": true, "physical": true,
}

func biSet(r *Runner, args []string) int {
	args = args[1:]
	if len(args) == 0 {
		for name, v := range r.Each {
			if v.IsSet() && v.Kind == expand.String {
				fmt.Fprintf(r.stdout(), "%s=%s\n", name, quote(v.Str))
			}
		}
		return 0
	}
	for len(args) > 0 {
		a := args[0]
		if a == "--" || a == "-" {
			r.params = slices.Clone(args[1:])
			return 0
		}
		if len(a) < 2 || (a[0] != '-' && a[0] != '+') {
			r.params = slices.Clone(args)
			return 0
		}
		on := a[0] == '-'
		args = args[1:]
		for _, c := range a[1:] {
			if c == 'o' {
				if len(args) == 0 {
					for _, n := range []string{"errexit", "noclobber", "noglob", "nounset", "pipefail", "xtrace"} {
						v, _ := r.option(n)
						state := "off"
						if v {
							state = "on"
						}
						fmt.Fprintf(r.stdout(), "%-15s\t%s\n", n, state)
					}
					continue
				}
				name := args[0]
				args = args[1:]
				if p := r.optionPtr(name); p != nil {
					*p = on
				} else if !ignoredOptions[name] {
					r.errf("set: %s: invalid option name", name)
					return 2
				}
				continue
			}
			if p := r.optionPtr(string(c)); p != nil {
				*p = on
			} else if !ignoredOptions[string(c)] {
				r.errf("set: %c%c: invalid option", a[0], c)
				return 2
			}
		}
	}
	return 0
}

func biShopt(r *Runner, args []string) int {
	args = args[1:]
	on, print := true, len(args) == 0
	opts := map[string]*bool{
		"nullglob": &r.opts.nullglob, "globstar": &r.opts.globstar, "dotglob": &r.opts.dotglob,
		"nocaseglob": &r.opts.nocaseglob, "extglob": &r.opts.extglob,
	}
	quiet := false
	var names []string
	for _, a := range args {
		switch a {
		case "-s":
			on = true
		case "-u":
			on = false
		case "-p":
			print = true
		case "-q":
			quiet = true
		default:
			names = append(names, a)
		}
	}
	if len(args) > 0 && args[0] != "-s" && args[0] != "-u" {
		print = true
	}
	status := 0
	if print {
		if len(names) == 0 {
			for n := range opts {
				names = append(names, n)
			}
			sort.Strings(names)
		}
		for _, n := range names {
			p, ok := opts[n]
			if !ok {
				status = 1
				continue
			}
			if !quiet {
				state := "off"
				if *p {
					state = "on"
				}
				fmt.Fprintf(r.stdout(), "%-15s\t%s\n", n, state)
			}
			if !*p {
				status = 1
			}
		}
		return status
	}
	for _, n := range names {
		if p, ok := opts[n]; ok {
			*p = on
			continue
		}
		switch n {
		case "expand_aliases", "lastpipe", "inherit_errexit", "failglob", "nocasematch", "checkwinsize", "histappend", "progcomp":
			continue
		}
		r.errf("shopt: %s: invalid shell option name", n)
		status = 1
	}
	return status
}

func biShift(r *Runner, args []string) int {
	n := 1
	if len(args) > 1 {
		v, ok := atoi(args[1])
		if !ok || v < 0 {
			r.errf("shift: %s: numeric argument required", args[1])
			return 1
		}
		n = v
	}
	if n > len(r.params) {
		return 1
	}
	r.params = r.params[n:]
	return 0
}

func biReturn(r *Runner, args []string) int {
	if r.funcDepth == 0 && r.depth == 0 {
		r.errf("return: can only `return' from a function or sourced script")
		return 1
	}
	code := r.status
	if len(args) > 1 {
		v, ok := atoi(args[1])
		if !ok {
			r.errf("return: %s: numeric argument required", args[1])
			v = 2
		}
		code = v & 255
	}
	r.flow = flowReturn
	return code
}

func biBreak(kind flow) func(r *Runner, args []string) int {
	return func(r *Runner, args []string) int {
		n := 1
		if len(args) > 1 {
			v, ok := atoi(args[1])
			if !ok || v < 1 {
				r.errf("%s: %s: loop count out of range", args[0], args[1])
				return 1
			}
			n = v
		}
		if r.loops == 0 {
			r.errf("%s: only meaningful in a `for', `while', or `until' loop", args[0])
			return 0
		}
		r.flow, r.flowN = kind, min(n, r.loops)
		return 0
	}
}

func biExit(r *Runner, args []string) int {
	code := r.status
	if len(args) > 1 {
		v, ok := atoi(args[1])
		if !ok {
			r.errf("exit: %s: numeric argument required", args[1])
			v = 2
		}
		code = v & 255
	}
	panic(exitShell{code: code})
}

// readLine reads up to delim (not kept) from in, one byte at a time so
// that the rest stays for the next reader; false at end of input with
// nothing read.
func (r *Runner) readLine(in io.Reader, delim byte, limit int) (string, bool, bool) {
	var b []byte
	one := make([]byte, 1)
	for limit < 0 || len(b) < limit {
		r.sh.step()
		var c byte
		if br, ok := in.(io.ByteReader); ok {
			v, err := br.ReadByte()
			if err != nil {
				return string(b), len(b) > 0, false
			}
			c = v
		} else {
			n, err := in.Read(one)
			if n == 0 || err != nil && n == 0 {
				return string(b), len(b) > 0, false
			}
			c = one[0]
		}
		if c == delim && limit < 0 {
			return string(b), true, true
		}
		b = append(b, c)
		if len(b) > maxValue {
			return string(b), true, false
		}
	}
	return string(b), true, true
}

func biRead(r *Runner, args []string) int {
	args = args[1:]
	raw := false
	delim := byte('\n')
	limit := -1
	array := ""
	in := r.stdin()
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		a := args[0]
		args = args[1:]
		if a == "--" {
			break
		}
		for i := 1; i < len(a); i++ {
			opt := a[i]
			needArg := strings.IndexByte("pdnNatu", opt) >= 0
			val := ""
			if needArg {
				if i+1 < len(a) {
					val = a[i+1:]
				} else if len(args) > 0 {
					val, args = args[0], args[1:]
				} else {
					r.errf("read: -%c: option requires an argument", opt)
					return 2
				}
			}
			switch opt {
			case 'r':
				raw = true
			case 's', 'e':
			case 'p', 't':
			case 'd':
				delim = 0
				if val != "" {
					delim = val[0]
				}
			case 'n', 'N':
				n, ok := atoi(val)
				if !ok {
					r.errf("read: %s: invalid number", val)
					return 2
				}
				limit = n
			case 'a':
				array = val
			case 'u':
				n, ok := atoi(val)
				if !ok || n < 0 || n >= len(r.fds) || r.fds[n] == nil || r.fds[n].r == nil {
					r.errf("read: %s: invalid file descriptor specification", val)
					return 1
				}
				in = r.fds[n].r
			default:
				r.errf("read: -%c: invalid option", opt)
				return 2
			}
			if needArg {
				break
			}
		}
	}
	line, got, complete := r.readLine(in, delim, limit)
	if !raw {
		// A backslash at the end of a line continues it.
		for got && complete && strings.HasSuffix(line, `\`) && delim == '\n' {
			next, more, done := r.readLine(in, delim, limit)
			line = line[:len(line)-1] + next
			got, complete = more || got, done
			if !more {
				break
			}
		}
	}
	if array != "" {
		fields := expand.ReadFields(r.config(), line, -1, raw)
		if err := r.setVar(array, expand.Variable{Set: true, Kind: expand.Indexed, List: fields}); err != nil {
			r.errf("read: %s", err)
			return 1
		}
	} else {
		names := args
		if len(names) == 0 {
			names = []string{"REPLY"}
		}
		var fields []string
		if len(args) == 0 {
			// REPLY keeps the line as it is, blanks included.
			fields = []string{line}
			if !raw {
				fields = []string{unescapeRead(line)}
			}
		} else {
			fields = expand.ReadFields(r.config(), line, len(names), raw)
		}
		for i, name := range names {
			val := ""
			if i < len(fields) {
				val = fields[i]
			}
			if err := r.setVar(name, expand.Variable{Set: true, Kind: expand.String, Str: val}); err != nil {
				r.errf("read: %s", err)
				return 1
			}
		}
	}
	if !complete {
		return 1
	}
	return 0
}

// unescapeRead removes the backslashes read quotes with (without -r).
func unescapeRead(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b = append(b, s[i])
	}
	return string(b)
}

func biMapfile(r *Runner, args []string) int {
	args = args[1:]
	trim := false
	delim := byte('\n')
	count := -1
	skip := 0
	name := "MAPFILE"
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		switch a {
		case "-t":
			trim = true
		case "-d", "-n", "-s", "-u", "-C", "-c", "-O":
			if len(args) == 0 {
				r.errf("%s: option requires an argument", a)
				return 2
			}
			v := args[0]
			args = args[1:]
			switch a {
			case "-d":
				delim = 0
				if v != "" {
					delim = v[0]
				}
			case "-n":
				count, _ = atoi(v)
				if count == 0 {
					count = -1
				}
			case "-s":
				skip, _ = atoi(v)
			}
		default:
			name = a
		}
	}
	var list []string
	in := r.stdin()
	for count < 0 || len(list) < count {
		line, got, complete := r.readLine(in, delim, -1)
		if !got {
			break
		}
		if !trim && complete {
			line += string(delim)
		}
		if skip > 0 {
			skip--
			continue
		}
		list = append(list, line)
	}
	if err := r.setVar(name, expand.Variable{Set: true, Kind: expand.Indexed, List: list}); err != nil {
		r.errf("mapfile: %s", err)
		return 1
	}
	return 0
}

func biSource(r *Runner, args []string) int {
	if len(args) < 2 {
		r.errf("%s: filename argument required", args[0])
		return 2
	}
	b, err := r.readFile(args[1])
	if err != nil {
		r.errf("%s: %s", args[1], errText(err))
		return 1
	}
	if len(args) > 2 {
		old := r.params
		r.params = slices.Clone(args[2:])
		defer func() { r.params = old }()
	}
	code := r.evalString(string(b), args[1])
	if r.flow == flowReturn {
		r.flow = flowNone
	}
	return code
}

func biEval(r *Runner, args []string) int {
	return r.evalString(strings.Join(args[1:], " "), "eval")
}

func biLet(r *Runner, args []string) int {
	if len(args) < 2 {
		r.errf("let: expression expected")
		return 1
	}
	status := 1
	for _, a := range args[1:] {
		x, err := parseArith(a)
		if err != nil {
			r.errf("let: %s: syntax error in expression", a)
			return 1
		}
		if r.arith(x) != 0 {
			status = 0
		} else {
			status = 1
		}
	}
	return status
}

// parseArith parses an arithmetic expression given as a string.
func parseArith(s string) (syntax.ArithmExpr, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader("(("+s+"))"), "")
	if err != nil {
		return nil, err
	}
	if len(f.Stmts) != 1 {
		return nil, errors.New("not one expression")
	}
	ac, ok := f.Stmts[0].Cmd.(*syntax.ArithmCmd)
	if !ok {
		return nil, errors.New("not an expression")
	}
	return ac.X, nil
}

var keywords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "case": true, "esac": true, "for": true,
	"select": true, "while": true, "until": true, "do": true, "done": true, "in": true, "function": true,
	"time": true, "{": true, "}": true, "!": true, "[[": true, "]]": true, "coproc": true,
}

// kindOf says what name runs as: keyword, function, builtin, file or "".
func (r *Runner) kindOf(name string) string {
	switch {
	case keywords[name]:
		return "keyword"
	case r.funcs[name] != nil:
		return "function"
	case builtins[name].run != nil:
		return "builtin"
	}
	if _, ok := commandFor(name); ok {
		return "file"
	}
	return ""
}

func biType(r *Runner, args []string) int {
	args = args[1:]
	terse, pathOnly := false, false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-t":
			terse = true
		case "-p", "-P":
			pathOnly = true
		}
		args = args[1:]
	}
	status := 0
	for _, name := range args {
		kind := r.kindOf(name)
		switch {
		case kind == "":
			if !terse && !pathOnly {
				r.errf("type: %s: not found", name)
			}
			status = 1
		case terse:
			fmt.Fprintln(r.stdout(), kind)
		case pathOnly:
			if kind == "file" {
				fmt.Fprintln(r.stdout(), "/usr/bin/"+name)
			}
		case kind == "keyword":
			fmt.Fprintf(r.stdout(), "%s is a shell keyword\n", name)
		case kind == "function":
			fmt.Fprintf(r.stdout(), "%s is a function\n", name)
		case kind == "builtin":
			fmt.Fprintf(r.stdout(), "%s is a shell builtin\n", name)
		default:
			fmt.Fprintf(r.stdout(), "%s is /usr/bin/%s\n", name, name)
		}
	}
	return status
}

func biCommand(r *Runner, args []string) int {
	args = args[1:]
	verbose := ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-v", "-V":
			verbose = args[0]
		case "-p":
		case "--":
			args = args[1:]
			goto run
		default:
			r.errf("command: %s: invalid option", args[0])
			return 2
		}
		args = args[1:]
	}
run:
	if len(args) == 0 {
		return 0
	}
	if verbose != "" {
		status := 0
		for _, name := range args {
			kind := r.kindOf(name)
			switch {
			case kind == "":
				if verbose == "-V" {
					r.errf("command: %s: not found", name)
				}
				status = 1
			case verbose == "-V":
				biType(r, []string{"type", name})
			case kind == "file":
				fmt.Fprintln(r.stdout(), "/usr/bin/"+name)
			default:
				fmt.Fprintln(r.stdout(), name)
			}
		}
		return status
	}
	if b, ok := builtins[args[0]]; ok {
		return r.runBuiltin(b, args)
	}
	return r.runCommand(args)
}

func biBuiltin(r *Runner, args []string) int {
	if len(args) < 2 {
		return 0
	}
	b, ok := builtins[args[1]]
	if !ok {
		r.errf("builtin: %s: not a shell builtin", args[1])
		return 1
	}
	return r.runBuiltin(b, args[1:])
}

// biExec runs its command and ends the shell with its status. Without a
// command, the redirections of exec stay for the rest of the shell (call
// keeps them).
func biExec(r *Runner, args []string) int {
	if len(args) < 2 {
		return 0
	}
	r.exec(args[1:], nil)
	panic(exitShell{code: r.status})
}

func biTrap(r *Runner, args []string) int {
	args = args[1:]
	if len(args) == 0 || args[0] == "-p" {
		for _, sig := range slices.Sorted(func(yield func(string) bool) {
			for k := range r.traps {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(r.stdout(), "trap -- %s %s\n", quote(r.traps[sig]), sig)
		}
		return 0
	}
	if args[0] == "-l" {
		return r.out("trap", " 1) SIGHUP\t 2) SIGINT\t 3) SIGQUIT\t 9) SIGKILL\t15) SIGTERM\n")
	}
	action := args[0]
	sigs := args[1:]
	if len(sigs) == 0 {
		// trap SIG resets SIG.
		sigs, action = args, "-"
	}
	for _, sig := range sigs {
		sig = strings.TrimPrefix(strings.ToUpper(sig), "SIG")
		if sig == "0" {
			sig = "EXIT"
		}
		if action == "-" {
			delete(r.traps, sig)
			continue
		}
		r.traps[sig] = action
	}
	return 0
}

func biGetopts(r *Runner, args []string) int {
	if len(args) < 3 {
		r.errf("getopts: usage: getopts optstring name [arg ...]")
		return 2
	}
	optstring, name := args[1], args[2]
	params := r.params
	if len(args) > 3 {
		params = args[3:]
	}
	silent := strings.HasPrefix(optstring, ":")
	if silent {
		optstring = optstring[1:]
	}
	optind, _ := atoi(r.getString("OPTIND"))
	if optind < 1 {
		optind = 1
	}
	sub, _ := atoi(r.getString("_OPTCHAR"))
	set := func(k, v string) { r.setString(k, v) }
	if optind > len(params) {
		set(name, "?")
		return 1
	}
	arg := params[optind-1]
	if sub == 0 {
		if arg == "--" {
			set("OPTIND", strconv.Itoa(optind+1))
			set(name, "?")
			return 1
		}
		if len(arg) < 2 || arg[0] != '-' {
			set(name, "?")
			return 1
		}
		sub = 1
	}
	c := arg[sub]
	sub++
	advance := func() {
		if sub >= len(arg) {
			optind++
			sub = 0
		}
		set("OPTIND", strconv.Itoa(optind))
		set("_OPTCHAR", strconv.Itoa(sub))
	}
	i := strings.IndexByte(optstring, c)
	if i < 0 || c == ':' {
		if silent {
			set("OPTARG", string(c))
		} else {
			fmt.Fprintf(r.stderr(), "%s: illegal option -- %c\n", r.arg0, c)
			delete(r.vars, "OPTARG")
		}
		set(name, "?")
		advance()
		return 0
	}
	if i+1 < len(optstring) && optstring[i+1] == ':' {
		switch {
		case sub < len(arg):
			set("OPTARG", arg[sub:])
			sub = len(arg)
		case optind < len(params):
			set("OPTARG", params[optind])
			optind++
		default:
			if silent {
				set(name, ":")
				set("OPTARG", string(c))
			} else {
				fmt.Fprintf(r.stderr(), "%s: option requires an argument -- %c\n", r.arg0, c)
				set(name, "?")
			}
			sub = len(arg)
			advance()
			return 0
		}
	}
	set(name, string(c))
	advance()
	return 0
}

func biAlias(r *Runner, args []string) int {
	if len(args) > 1 {
		r.errf("alias: aliases are not supported in this shell; use a function")
		return 1
	}
	return 0
}

func biUmask(r *Runner, args []string) int {
	if len(args) == 1 {
		return r.out("umask", "0022\n")
	}
	return 0
}

func biTimes(r *Runner, _ []string) int {
	return r.out("times", "0m0.000s 0m0.000s\n0m0.000s 0m0.000s\n")
}

func biKill(r *Runner, args []string) int {
	if len(args) > 1 && args[1] == "-l" {
		return r.out("kill", "HUP INT QUIT KILL TERM\n")
	}
	r.errf("kill: there are no other processes in this sandbox")
	return 1
}

// biSh runs a shell: sh -c script [name [args]], sh file [args], or the
// script on standard input.
func biSh(r *Runner, args []string) int {
	name := args[0]
	args = args[1:]
	var script, file string
	hasScript := false
	var setOpts []string
	for len(args) > 0 && len(args[0]) > 1 && (args[0][0] == '-' || args[0][0] == '+') {
		a := args[0]
		args = args[1:]
		if a == "--" {
			break
		}
		if a == "-o" || a == "+o" {
			if len(args) > 0 {
				setOpts = append(setOpts, a, args[0])
				args = args[1:]
			}
			continue
		}
		for _, c := range a[1:] {
			switch c {
			case 'c':
				hasScript = true
			case 'l', 'i', 's', 'p':
			default:
				setOpts = append(setOpts, string(a[0])+string(c))
			}
		}
	}
	var params []string
	arg0 := name
	switch {
	case hasScript:
		if len(args) == 0 {
			r.errf("%s: -c: option requires an argument", name)
			return 2
		}
		script, args = args[0], args[1:]
		if len(args) > 0 {
			arg0, params = args[0], args[1:]
		}
	case len(args) > 0:
		file = args[0]
		params = args[1:]
		b, err := r.readFile(file)
		if err != nil {
			fmt.Fprintf(r.stderr(), "%s: %s: %s\n", name, file, errText(err))
			return 127
		}
		script, arg0 = string(b), file
	default:
		b, err := io.ReadAll(r.stdin())
		if err != nil {
			return 1
		}
		script = string(b)
	}
	return r.runScript(script, arg0, params, func(child *Runner) int {
		if len(setOpts) == 0 {
			return 0
		}
		return biSet(child, append([]string{"set"}, setOpts...))
	})
}
