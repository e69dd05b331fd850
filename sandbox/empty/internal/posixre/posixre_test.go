//go:build !wasip1

package posixre

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const text = "foo bar\nfoo(bar)\na+b=c\nx{2}y\nxxy\nabcabc\n^caret$ dollar\nword wordy sword\n[brackets]\nback\\slash\n*star\nTAB\there\n"

var patterns = []struct {
	expr string
	ere  bool
}{
	{`foo`, false}, {`^foo`, false}, {`bar$`, false}, {`a+b`, false}, {`a\+b`, false}, {`x\{2\}`, false},
	{`x{2}`, false}, {`x{2}`, true}, {`\(abc\)*`, false}, {`(abc)+`, true}, {`foo\|word`, false}, {`foo|word`, true},
	{`\<word\>`, false}, {`\bword\b`, true}, {`[[:upper:]]\+`, false}, {`[^a-z ]`, false}, {`[]]`, false}, {`[a-c]\{3\}`, false},
	{`\^caret`, false}, {`^*star`, false}, {`*star`, false}, {`\*`, true}, {`a.c`, false}, {`^$`, false}, {`w.*d`, false},
	{`\$ d`, false}, {`[\]`, false}, {`x\?y`, false}, {`x?y`, true}, {`(`, false}, {`\(bar\)`, false}, {`[[:space:]]here`, true},
	{`o\{1,\}`, false}, {`\w\+y`, false}, {`s\S`, false}, {`a{,2}`, true}, {`x{1,}y`, true}, {`b{`, true},
}

// TestAgainstGNUGrep holds the translation to GNU grep: grep -o prints the
// same matches, line by line, for each pattern.
func TestAgainstGNUGrep(t *testing.T) {
	if _, err := exec.LookPath("grep"); err != nil {
		t.Fatalf("the differential test needs GNU grep on PATH: %v", err)
	}
	for _, p := range patterns {
		t.Run(p.expr, func(t *testing.T) {
			args := []string{"-o"}
			if p.ere {
				args = append(args, "-E")
			}
			cmd := exec.Command("grep", append(args, "--", p.expr)...)
			cmd.Stdin = strings.NewReader(text)
			cmd.Env = []string{"LC_ALL=C"}
			want, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 2 {
				_, err := Compile(p.expr, p.ere, false)
				assert.Error(t, err, "GNU grep refuses %q; so must we", p.expr)
				return
			}
			rx, cerr := Compile(p.expr, p.ere, false)
			require.NoError(t, cerr)
			var got strings.Builder
			for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
				for _, m := range rx.FindAllString(line, -1) {
					if m != "" {
						got.WriteString(m + "\n")
					}
				}
			}
			assert.Equal(t, string(want), got.String())
		})
	}
}

func TestBackreferencesAreRefused(t *testing.T) {
	_, err := Compile(`\(a\)\1`, false, false)
	assert.ErrorIs(t, err, ErrBackref)
	_, err = Compile(`(a)\1`, true, false)
	assert.ErrorIs(t, err, ErrBackref)
}

func TestIgnoreCase(t *testing.T) {
	rx, err := Compile(`hello`, false, true)
	require.NoError(t, err)
	assert.True(t, rx.MatchString("say HeLLo"))
}

func FuzzTranslate(f *testing.F) {
	for _, p := range patterns {
		f.Add(p.expr, p.ere)
	}
	f.Fuzz(func(t *testing.T, expr string, ere bool) {
		rx, err := Compile(expr, ere, false)
		if err != nil {
			return
		}
		rx.FindAllString(text, -1)
	})
}
