// Package jq adds jq to the empty sandbox's shell: the filters scripts use
// (paths, pipes, construction, select, map, sort_by, group_by, reduce,
// assignment, del, string and regex functions, @csv and friends), held to
// jq 1.6's output. Import it for its effect where the module's agents are
// registered:
//
//	import _ "github.com/damperdev/damper/sandbox/empty/jq"
//
// It is a package of its own so that a module pays for it (~175 KB gzip)
// only when it wants it. Not supported: def, label, input/inputs,
// tostream, getpath on invalid paths' errors, $__loc__, SQL-style and
// date formatting builtins beyond todate and fromdate.
package jq

import (
	"errors"
	"strconv"
	"strings"

	"github.com/damperdev/damper/sandbox/empty/internal/jq"
	"github.com/damperdev/damper/sandbox/empty/internal/shell"
)

func init() { shell.Register("jq", run) }

// maxInputs bounds how many values one run reads.
const maxInputs = 1 << 20

// run is jq's command line: jq [options] filter [files].
func run(p shell.Proc) int {
	args := p.Args()
	var filter *string
	var files []string
	raw, join, compact, slurp, nullIn, rawIn, exitStatus, sortKeys, tab := false, false, false, false, false, false, false, false, false
	indent := 2
	vars := map[string]any{}
	named := jq.NewObject()
	for i := 0; i < len(args); i++ {
		a := args[i]
		need := func(n int) bool { return i+n < len(args) }
		switch {
		case a == "--":
			files = append(files, args[i+1:]...)
			i = len(args)
		case a == "--arg" && need(2):
			vars[args[i+1]] = args[i+2]
			named = named.With(args[i+1], args[i+2])
			i += 2
		case a == "--argjson" && need(2):
			v, ok, err := jq.NewDecoder(args[i+2]).Next()
			if err != nil || !ok {
				p.Errorf("Invalid JSON text passed to --argjson")
				return 2
			}
			vars[args[i+1]] = v
			named = named.With(args[i+1], v)
			i += 2
		case a == "--indent" && need(1):
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 0 || n > 7 {
				p.Errorf("Cannot indent more than 7 characters")
				return 2
			}
			indent = n
			i++
		case a == "--tab":
			tab = true
		case a == "--raw-output":
			raw = true
		case a == "--join-output":
			raw, join = true, true
		case a == "--compact-output":
			compact = true
		case a == "--slurp":
			slurp = true
		case a == "--null-input":
			nullIn = true
		case a == "--raw-input":
			rawIn = true
		case a == "--exit-status":
			exitStatus = true
		case a == "--sort-keys":
			sortKeys = true
		case a == "--color-output" || a == "--monochrome-output" || a == "--ascii-output" || a == "--unbuffered" || a == "--seq" || a == "--stream":
		case len(a) > 1 && a[0] == '-' && a[1] != '-':
			for _, c := range a[1:] {
				switch c {
				case 'r':
					raw = true
				case 'j':
					raw, join = true, true
				case 'c':
					compact = true
				case 's':
					slurp = true
				case 'n':
					nullIn = true
				case 'R':
					rawIn = true
				case 'e':
					exitStatus = true
				case 'S':
					sortKeys = true
				case 'a', 'C', 'M':
				default:
					p.Errorf("Unknown option: %s", a)
					return 2
				}
			}
		case strings.HasPrefix(a, "--"):
			p.Errorf("Unknown option: %s", a)
			return 2
		case filter == nil:
			f := a
			filter = &f
		default:
			files = append(files, a)
		}
	}
	if filter == nil {
		p.Errorf("Usage:\tjq [OPTIONS] FILTER [FILES...]")
		return 2
	}
	prog, err := jq.Parse(*filter)
	if err != nil {
		p.Errorf("error: %s\njq: 1 compile error", err)
		return 3
	}
	envObj := jq.NewObject()
	for k, v := range p.Environ() {
		envObj = envObj.With(k, v)
	}
	vars["ENV"] = envObj
	named2 := jq.NewObject().With("positional", []any{}).With("named", named)
	vars["__prog_args"] = named2
	opts := jq.EncodeOpts{Indent: strings.Repeat(" ", indent), SortKeys: sortKeys}
	if tab {
		opts.Indent = "\t"
	}
	if compact {
		opts.Indent = ""
	}

	// The inputs: JSON values of the files (or stdin), or their lines with -R.
	var text strings.Builder
	if st := p.Inputs(files, func(_ string, data []byte) error {
		text.Write(data)
		return nil
	}); st != 0 {
		return 2
	}
	// The inputs: the JSON values of the files (or stdin), read one by one
	// as the program runs on them; or their lines, with -R.
	var next func() (any, bool, error)
	switch {
	case nullIn:
		done := false
		next = func() (any, bool, error) {
			if done {
				return nil, false, nil
			}
			done = true
			return nil, true, nil
		}
	case rawIn && slurp:
		done := false
		next = func() (any, bool, error) {
			if done {
				return nil, false, nil
			}
			done = true
			return text.String(), true, nil
		}
	case rawIn:
		ls := strings.SplitAfter(text.String(), "\n")
		if len(ls) > 0 && ls[len(ls)-1] == "" {
			ls = ls[:len(ls)-1]
		}
		next = func() (any, bool, error) {
			if len(ls) == 0 {
				return nil, false, nil
			}
			l := strings.TrimSuffix(ls[0], "\n")
			ls = ls[1:]
			return l, true, nil
		}
	default:
		d := jq.NewDecoder(text.String())
		next = d.Next
		if slurp {
			all := []any{}
			for {
				v, ok, err := d.Next()
				if err != nil {
					p.Errorf("parse error: %s", err)
					return 4
				}
				if !ok {
					break
				}
				if all = append(all, v); len(all) > maxInputs {
					p.Errorf("error: too many inputs")
					return 2
				}
			}
			done := false
			next = func() (any, bool, error) {
				if done {
					return nil, false, nil
				}
				done = true
				return all, true, nil
			}
		}
	}

	status := 0
	var last any
	outputs := 0
	var b strings.Builder
	for {
		in, ok, err := next()
		if err != nil {
			p.Write(b.String())
			p.Errorf("parse error: %s", err)
			return 4
		}
		if !ok {
			break
		}
		err = prog.Run(in, jq.Env{Vars: vars, Step: p.Step}, func(v any) error {
			outputs++
			last = v
			if s, ok := v.(string); ok && raw {
				b.WriteString(s)
			} else {
				jq.Encode(&b, v, opts)
			}
			if !join {
				b.WriteByte('\n')
			}
			if b.Len() > 64<<10 {
				if p.Write(b.String()) != nil {
					return errors.New("write")
				}
				b.Reset()
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, jq.ErrHalt) {
				break
			}
			var he *jq.HaltError
			if errors.As(err, &he) {
				p.Write(b.String())
				b.Reset()
				p.Stderr().Write([]byte(he.Error()))
				return he.Code
			}
			p.Write(b.String())
			b.Reset()
			p.Errorf("error (at <stdin>:0): %s", err)
			status = 5
		}
	}
	p.Write(b.String())
	if status == 0 && exitStatus {
		switch {
		case outputs == 0:
			status = 4
		case last == nil || last == false:
			status = 1
		}
	}
	return status
}
