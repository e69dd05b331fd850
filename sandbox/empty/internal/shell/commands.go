package shell

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
)

// proc is one run of a command: its name, arguments and files.
type proc struct {
	r    *Runner
	name string
	args []string // without the name
	in   io.Reader
	out  io.Writer
	err  io.Writer
	// readSize is how much of an endless device read takes, when the
	// command knows (head -c); zero is deviceRead.
	readSize int
}

// command is a command the shell runs in Go; it returns the exit status.
type command func(p *proc) int

var commands = map[string]command{}

// commandFor finds a command, or a builtin that exists as a program too.
func commandFor(name string) (command, bool) {
	if c, ok := commands[name]; ok {
		return c, true
	}
	if b, ok := builtins[name]; ok && b.external {
		return func(p *proc) int { return b.run(p.r, append([]string{p.name}, p.args...)) }, true
	}
	return nil, false
}

// Commands lists the names of the commands the shell runs, builtins
// included, sorted.
func Commands() []string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// runUtility runs a command with r's descriptors; its own bugs fail it
// alone.
func (r *Runner) runUtility(c command, args []string) (code int) {
	defer r.catchBug(args[0], &code)
	p := &proc{r: r, name: args[0], args: args[1:], in: r.stdin(), out: r.stdout(), err: r.stderr()}
	return c(p)
}

// errorf prints "name: message" on the command's stderr.
func (p *proc) errorf(format string, args ...any) {
	fmt.Fprintf(p.err, "%s: %s\n", p.name, fmt.Sprintf(format, args...))
}

// usage reports a usage error: status 2 for most tools' bad options.
func (p *proc) usage(format string, args ...any) int {
	p.errorf(format, args...)
	return 2
}

// write writes s to stdout; a full pipe ends the stage, another failure
// is reported and returned.
func (p *proc) write(s string) error {
	if err := write(p.out, s); err != nil {
		p.errorf("write error: %s", errText(err))
		return err
	}
	return nil
}

func (p *proc) writeBytes(b []byte) error {
	_, err := p.out.Write(b)
	if err != nil {
		if err == errBrokenPipe {
			panic(brokenPipe{})
		}
		p.errorf("write error: %s", errText(err))
	}
	return err
}

func (p *proc) step() { p.r.sh.step() }

// read returns the content of the file name ("-" is standard input).
func (p *proc) read(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(p.in)
	}
	if p.readSize > 0 {
		return p.r.readN(name, p.readSize)
	}
	return p.r.readFile(name)
}

// inputs calls f with the content of each file of names (standard input
// when there are none), reporting the ones it cannot read as cat does.
// It returns 1 if one could not be read.
func (p *proc) inputs(names []string, f func(name string, data []byte) error) int {
	if len(names) == 0 {
		names = []string{"-"}
	}
	status := 0
	for _, name := range names {
		b, err := p.read(name)
		if err != nil {
			p.errorf("%s: %s", name, errText(err))
			status = 1
			continue
		}
		if err := f(name, b); err != nil {
			return 1
		}
	}
	return status
}

// lines splits data into lines without their newlines; a last line with
// no newline is a line too.
func lines(data []byte) [][]byte {
	if len(data) == 0 {
		return nil
	}
	ls := bytes.Split(data, []byte{'\n'})
	if len(ls[len(ls)-1]) == 0 {
		ls = ls[:len(ls)-1]
	}
	return ls
}

// flags parses single-letter options (-abc, -n 5, -n5) before the
// operands, as getopt does; withArg names the options that take one.
// Parsing stops at "--" or the first operand unless permute, which lets
// options follow operands as GNU tools do.
type flagSet struct {
	on   [256]bool // an array, not a map: has is inlined at 110 call sites
	vals map[byte][]string
	rest []string
}

func (f *flagSet) has(c byte) bool { return f.on[c] }

func (f *flagSet) val(c byte) (string, bool) {
	v := f.vals[c]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// parseFlags parses args; long maps long options (without --) to their
// letter, and the letter's entry in withArg says whether it takes a value.
func (p *proc) parseFlags(args []string, allowed, withArg string, long map[string]byte, permute bool) (*flagSet, error) {
	f := &flagSet{vals: map[byte][]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			f.rest = append(f.rest, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "--") && long != nil {
			name, val, hasVal := strings.Cut(a[2:], "=")
			c, ok := long[name]
			if !ok {
				return nil, fmt.Errorf("unrecognized option '%s'", a)
			}
			if strings.IndexByte(withArg, c) >= 0 {
				if !hasVal {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("option '%s' requires an argument", a)
					}
					i++
					val = args[i]
				}
				f.vals[c] = append(f.vals[c], val)
			}
			f.on[c] = true
			continue
		}
		if len(a) < 2 || a[0] != '-' {
			if !permute {
				f.rest = append(f.rest, args[i:]...)
				break
			}
			f.rest = append(f.rest, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if strings.IndexByte(allowed, c) < 0 && strings.IndexByte(withArg, c) < 0 {
				return nil, fmt.Errorf("invalid option -- '%c'", c)
			}
			f.on[c] = true
			if strings.IndexByte(withArg, c) >= 0 {
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("option requires an argument -- '%c'", c)
					}
					i++
					val = args[i]
				}
				f.vals[c] = append(f.vals[c], val)
				break
			}
		}
	}
	return f, nil
}

// Proc is a running command, as a command registered from another
// package sees it.
type Proc struct{ p *proc }

// Args are the command's arguments, without its name.
func (p Proc) Args() []string { return p.p.args }

// Errorf prints "name: message" on the command's stderr.
func (p Proc) Errorf(format string, args ...any) { p.p.errorf(format, args...) }

// Write writes to the command's stdout; a full pipe ends its pipeline
// stage, and any other failure is reported and returned.
func (p Proc) Write(s string) error { return p.p.write(s) }

// Stderr is the command's standard error.
func (p Proc) Stderr() io.Writer { return p.p.err }

// Inputs calls f with the content of each file of names (standard input
// when there are none), as cat reads them; 1 when one could not be read.
func (p Proc) Inputs(names []string, f func(name string, data []byte) error) int {
	return p.p.inputs(names, f)
}

// Environ returns the exported variables.
func (p Proc) Environ() map[string]string { return p.p.r.environ() }

// Step counts one step of the command's work against the script's budget.
func (p Proc) Step() { p.p.step() }

// Register adds a command, for packages that link one only when a module
// asks for it (sandbox/empty/jq). Call it from an init.
func Register(name string, run func(p Proc) int) {
	commands[name] = func(p *proc) int { return run(Proc{p}) }
}
