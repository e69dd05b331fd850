package shell

import (
	"bytes"
	"io"
	"strings"

	"github.com/damperdev/damper/sandbox/empty/internal/sed"
)

func init() { commands["sed"] = cmdSed }

func cmdSed(p *proc) int {
	args := p.args
	var scripts []string
	quiet, ere, inPlace, separate := false, false, false, false
	var files []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			files = append(files, args[i+1:]...)
			i = len(args)
		case a == "-n" || a == "--quiet" || a == "--silent":
			quiet = true
		case a == "-E" || a == "-r" || a == "--regexp-extended":
			ere = true
		case a == "-s" || a == "--separate":
			separate = true
		case a == "-i" || strings.HasPrefix(a, "-i") && !strings.ContainsAny(a[2:], "nEre") || strings.HasPrefix(a, "--in-place"):
			inPlace, separate = true, true // a suffix (a backup) is accepted and not kept
		case a == "-e" || a == "--expression":
			if i+1 >= len(args) {
				return p.usage("option requires an argument -- 'e'")
			}
			i++
			scripts = append(scripts, args[i])
		case strings.HasPrefix(a, "--expression="):
			scripts = append(scripts, strings.TrimPrefix(a, "--expression="))
		case a == "-f" || a == "--file":
			if i+1 >= len(args) {
				return p.usage("option requires an argument -- 'f'")
			}
			i++
			b, err := p.read(args[i])
			if err != nil {
				p.errorf("couldn't open file %s: %s", args[i], errText(err))
				return 1
			}
			scripts = append(scripts, strings.TrimSuffix(string(b), "\n"))
		case a == "-z" || a == "-u" || a == "--posix" || a == "--debug" || a == "-l":
		case len(a) > 1 && a[0] == '-' && a != "-":
			// Combined flags such as -ne or -nE.
			ok := true
			for _, c := range a[1:] {
				switch c {
				case 'n':
					quiet = true
				case 'E', 'r':
					ere = true
				case 's':
					separate = true
				case 'i':
					inPlace, separate = true, true
				case 'e':
					if i+1 >= len(args) {
						return p.usage("option requires an argument -- 'e'")
					}
					i++
					scripts = append(scripts, args[i])
				default:
					ok = false
				}
			}
			if !ok {
				return p.usage("invalid option -- '%s'\nUsage: sed [OPTION]... {script-only-if-no-other-script} [input-file]...", strings.TrimLeft(a, "-"))
			}
		default:
			if len(scripts) == 0 {
				scripts = append(scripts, a)
				continue
			}
			files = append(files, a)
		}
	}
	if len(scripts) == 0 {
		return p.usage("no script specified\nUsage: sed [OPTION]... {script-only-if-no-other-script} [input-file]...")
	}
	prog, err := sed.Parse(strings.Join(scripts, "\n"), ere)
	if err != nil {
		p.errorf("-e expression #1, char 0: %s", err)
		return 1
	}
	env := sed.Env{
		Out:  p.out,
		Read: func(name string) ([]byte, error) { return p.r.readFile(name) },
		Create: func(name string) (io.Writer, error) {
			w, msg := p.r.openWrite(name, false, false)
			if msg != "" {
				return nil, errString(msg)
			}
			return w, nil
		},
		Step: p.step,
	}
	if inPlace && len(files) == 0 {
		p.errorf("no input files")
		return 1
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	status := 0
	var inputs []sed.File
	for _, name := range files {
		data, err := p.read(name)
		if err != nil {
			p.errorf("can't read %s: %s", name, errText(err))
			status = 2
			continue
		}
		inputs = append(inputs, sed.File{Name: name, Data: data})
	}
	run := func(in []sed.File, out io.Writer) (int, bool) {
		e := env
		e.Out = out
		code, err := prog.Run(in, quiet, e)
		if err != nil {
			p.errorf("%s", err)
			return 4, false
		}
		return code, true
	}
	if !separate {
		code, ok := run(inputs, p.out)
		if !ok {
			return code
		}
		if code != 0 {
			return code
		}
		return status
	}
	for _, in := range inputs {
		if !inPlace {
			code, ok := run([]sed.File{in}, p.out)
			if !ok || code != 0 {
				return code
			}
			continue
		}
		var buf bytes.Buffer
		code, ok := run([]sed.File{in}, &buf)
		if !ok {
			return code
		}
		t, err := p.r.resolve(in.Name)
		if err == nil && t.fs != nil {
			err = t.fs.WriteFile(t.rel, buf.Bytes())
		}
		if err != nil {
			p.errorf("couldn't edit %s: %s", in.Name, errText(err))
			return 4
		}
		if code != 0 {
			return code
		}
	}
	return status
}

type errString string

func (e errString) Error() string { return string(e) }
