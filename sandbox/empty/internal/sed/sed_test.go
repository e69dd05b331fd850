//go:build !wasip1

package sed

import (
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const input = "alpha one\nbeta two\ngamma three\ndelta four\nepsilon five\n"

var cases = []struct {
	args  []string // -n and -E before the script
	input string
}{
	{args: []string{"s/a/A/"}},
	{args: []string{"s/a/A/g"}},
	{args: []string{"s/a/A/2"}},
	{args: []string{"s/\\(a\\)\\(l\\)/\\2\\1/"}},
	{args: []string{"-E", "s/([a-z]+) ([a-z]+)/\\2 \\1/"}},
	{args: []string{"s/[aeiou]/(&)/g"}},
	{args: []string{"s/ONE/1/I"}},
	{args: []string{"-n", "/e/p"}},
	{args: []string{"-n", "2,4p"}},
	{args: []string{"-n", "/beta/,/delta/p"}},
	{args: []string{"-n", "$p"}},
	{args: []string{"-n", "1~2p"}},
	{args: []string{"2,+1d"}},
	{args: []string{"/gamma/,$d"}},
	{args: []string{"0,/a/s/a/X/"}},
	{args: []string{"3q"}},
	{args: []string{"/gamma/Q"}},
	{args: []string{"1!G;h;$!d"}},
	{args: []string{"N;P;D"}},
	{args: []string{"$!N;s/\\n/ /"}},
	{args: []string{"-n", "$="}},
	{args: []string{"="}},
	{args: []string{"2i\\\ninserted"}},
	{args: []string{"2a appended"}},
	{args: []string{"/beta/c\\\nchanged"}},
	{args: []string{"2,3c\\\nrange changed"}},
	{args: []string{"y/abc/ABC/"}},
	{args: []string{"-n", "/one/{s/one/1/;p}"}},
	{args: []string{"/two/!s/$/ !/"}},
	{args: []string{":a;s/^\\(.\\{1,14\\}\\)$/\\1./;ta"}},
	{args: []string{"s/o/0/;t;s/$/ no-o/"}},
	{args: []string{"s/o/0/;T;s/$/ had-o/"}},
	{args: []string{"-n", "h;n;G;p"}},
	{args: []string{"s/\\w\\+/<&>/2"}},
	{args: []string{"s/\\<t/T/g"}},
	{args: []string{"s/.*/\\U&/"}},
	{args: []string{"s/\\(.\\)\\(.*\\)/\\u\\1\\L\\2/"}},
	{args: []string{"-E", "s/(^|[^a-z])([a-z])/\\1\\u\\2/g"}},
	{args: []string{"s/x*/-/g"}},
	{args: []string{"s|/|_|g"}, input: "a/b/c\n/d\n"},
	{args: []string{"-n", "l"}, input: "tab\there\\\n"},
	{args: []string{"s/$/X/"}, input: "no newline at end"},
	{args: []string{"$a\\\nlast"}, input: "a\nb"},
	{args: []string{"-n", "/[[:digit:]]\\{2,\\}/p"}, input: "a1\nb22\nc333\n"},
	{args: []string{"-E", "-n", "/^(ab|cd)+$/p"}, input: "abab\nabcd\nabc\n"},
	{args: []string{"s/[]]/R/g; s/[^a-z]/./g"}, input: "a]b[c\n"},
	{args: []string{"-e", "s/a/1/", "-e", "s/b/2/"}, input: "ab\n"},
	{args: []string{"1d;$d"}},
	{args: []string{"n;d"}},
	{args: []string{"-n", "x;p"}},
	{args: []string{"s/e/E/3g"}, input: "eeeeee\n"},
	{args: []string{"/^$/d"}, input: "a\n\n\nb\n\n"},
}

// TestAgainstGNUSed runs each case with GNU sed on this machine and with
// this package, and requires the same output.
func TestAgainstGNUSed(t *testing.T) {
	if _, err := exec.LookPath("sed"); err != nil {
		t.Fatalf("the differential test needs GNU sed on PATH: %v", err)
	}
	for _, c := range cases {
		in := c.input
		if in == "" {
			in = input
		}
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			cmd := exec.Command("sed", c.args...)
			cmd.Stdin = strings.NewReader(in)
			cmd.Env = []string{"LC_ALL=C.UTF-8"}
			want, err := cmd.Output()
			require.NoError(t, err)

			quiet, ere := false, false
			var scripts []string
			for i := 0; i < len(c.args); i++ {
				switch c.args[i] {
				case "-n":
					quiet = true
				case "-E":
					ere = true
				case "-e":
					i++
					scripts = append(scripts, c.args[i])
				default:
					scripts = append(scripts, c.args[i])
				}
			}
			prog, err := Parse(strings.Join(scripts, "\n"), ere)
			require.NoError(t, err)
			var out bytes.Buffer
			_, err = prog.Run([]File{{Name: "-", Data: []byte(in)}}, quiet, Env{Out: &out})
			require.NoError(t, err)
			assert.Equal(t, string(want), out.String())
		})
	}
}

func TestQuitCodeAndErrors(t *testing.T) {
	prog, err := Parse("2q5", false)
	require.NoError(t, err)
	var out bytes.Buffer
	code, err := prog.Run([]File{{Data: []byte(input)}}, false, Env{Out: &out})
	require.NoError(t, err)
	assert.Equal(t, 5, code)
	assert.Equal(t, "alpha one\nbeta two\n", out.String())

	for _, bad := range []string{"s/a/b", "s/a", "y/ab/c/", "k", "2,", "{p", "}", "b nolabel", "s/a/b/0", "s/\\(a\\)/\\1/;s/\\1//", "0p", "e ls"} {
		_, err := Parse(bad, false)
		assert.Error(t, err, "%q", bad)
	}
}

func TestWriteAndRead(t *testing.T) {
	prog, err := Parse("/two/w out.txt\n/four/r extra.txt", false)
	require.NoError(t, err)
	var out, file bytes.Buffer
	_, err = prog.Run([]File{{Data: []byte(input)}}, false, Env{
		Out:    &out,
		Read:   func(name string) ([]byte, error) { return []byte("EXTRA\n"), nil },
		Create: func(name string) (io.Writer, error) { return &file, nil },
	})
	require.NoError(t, err)
	assert.Equal(t, "beta two\n", file.String())
	assert.Contains(t, out.String(), "delta four\nEXTRA\nepsilon five\n")
}

func FuzzSed(f *testing.F) {
	for _, c := range cases {
		f.Add(strings.Join(c.args[len(c.args)-1:], ""), input)
	}
	f.Add("s/a*/x/g;:l;N;bl", "aaa\nbbb\n")
	f.Fuzz(func(t *testing.T, script, in string) {
		prog, err := Parse(script, false)
		if err != nil {
			return
		}
		steps := 0
		var out bytes.Buffer
		defer func() {
			if r := recover(); r != nil && r != errStepped {
				panic(r)
			}
		}()
		prog.Run([]File{{Data: []byte(in)}}, false, Env{
			Out:    &out,
			Read:   func(string) ([]byte, error) { return nil, nil },
			Create: func(string) (io.Writer, error) { return io.Discard, nil },
			Step: func() {
				if steps++; steps > 20000 {
					panic(errStepped)
				}
			},
		})
	})
}

var errStepped = &struct{ error }{}
