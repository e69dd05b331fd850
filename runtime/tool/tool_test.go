//go:build !wasip1

package tool_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/tool"
	"github.com/damperdev/damper/sandbox"
	_ "github.com/damperdev/damper/sandbox/empty"
)

type addIn struct {
	A  int    `json:"a" jsonschema:"description=The first term"`
	B  int    `json:"b" jsonschema:"minimum=0"`
	Op string `json:"op,omitempty" jsonschema:"enum=plus,enum=minus"`
}

var add = tool.New("add", "Adds two numbers.", func(ctx *agent.Context, in addIn) (map[string]int, error) {
	if in.A == 13 {
		return nil, errors.New("13 is unlucky")
	}
	if in.Op == "minus" {
		return map[string]int{"sum": in.A - in.B}, nil
	}
	return map[string]int{"sum": in.A + in.B}, nil
})

// callIn asks the tooltest agent to write files into its sandbox and call
// one tool (a built-in, or add) with input.
type callIn struct {
	Files map[string]string `json:"files,omitempty"`
	Tool  string            `json:"tool"`
	Input json.RawMessage   `json:"input"`
}

type callOut struct {
	Text  string `json:"text,omitempty"`
	Error string `json:"error,omitempty"`
	Input bool   `json:"input_error,omitempty"`
}

func init() {
	agent.Register("tooltest", func(ctx *agent.Context, in callIn) (callOut, error) {
		sb, err := sandbox.Open(ctx, sandbox.Empty())
		if err != nil {
			return callOut{}, err
		}
		for name, content := range in.Files {
			if err := sb.WriteFile(ctx, name, []byte(content)); err != nil {
				return callOut{}, err
			}
		}
		for _, t := range append(tool.Builtins(sandbox.Empty()), add) {
			if t.Name() != in.Tool {
				continue
			}
			text, err := t.Call(ctx, in.Input)
			if err != nil {
				var ie *tool.InputError
				return callOut{Error: err.Error(), Input: errors.As(err, &ie)}, nil
			}
			return callOut{Text: text}, nil
		}
		return callOut{}, errors.New("no tool " + in.Tool)
	})
}

func call(t *testing.T, h *agenttest.Host, id string, in callIn) callOut {
	t.Helper()
	out, err := h.Run(t.Context(), "tooltest", id, in)
	require.NoError(t, err)
	var co callOut
	require.NoError(t, json.Unmarshal(out, &co))
	return co
}

func TestCustomTool(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	var schema map[string]any
	require.NoError(t, json.Unmarshal(add.Schema(), &schema))
	assert.Equal(t, map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"a", "b"},
		"properties": map[string]any{
			"a":  map[string]any{"type": "integer", "description": "The first term"},
			"b":  map[string]any{"type": "integer", "minimum": 0.0},
			"op": map[string]any{"type": "string", "enum": []any{"plus", "minus"}},
		},
	}, schema, "the schema of an object, without $schema")

	for _, tc := range []struct {
		name, input string
		want        callOut
	}{
		{"ok", `{"a":2,"b":3}`, callOut{Text: `{"sum":5}`}},
		{"enum", `{"a":2,"b":3,"op":"minus"}`, callOut{Text: `{"sum":-1}`}},
		{"the function's error", `{"a":13,"b":0}`, callOut{Error: "13 is unlucky"}},
		{"every problem", `{"a":"two","b":-1,"op":"times","c":1}`, callOut{Input: true, Error: "invalid arguments:\n" +
			"- /a: want type integer, got string \"two\"\n" +
			"- /b: want at least 0, got -1\n" +
			"- /c: unknown member: allowed are \"a\", \"b\", \"op\"\n" +
			"- /op: want one of \"plus\", \"minus\""}},
		{"missing", `{}`, callOut{Input: true, Error: "invalid arguments:\n- (the value): missing required member \"a\"\n- (the value): missing required member \"b\""}},
		{"not JSON", `"{\"a\": 1, b: 2"`, callOut{Input: true, Error: "invalid arguments:\n- (the value): the arguments are not a JSON object: \"{\\\"a\\\": 1, b: 2\""}},
		{"not an object", `[1,2]`, callOut{Input: true, Error: "invalid arguments:\n- (the value): want type object, got an array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, h, "custom", callIn{Tool: "add", Input: json.RawMessage(tc.input)})
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestNewRefusesMistakes(t *testing.T) {
	assert.PanicsWithValue(t, `tool name "has space": want 1 to 64 of a-z A-Z 0-9 _ -`, func() {
		tool.New("has space", "", func(*agent.Context, addIn) (string, error) { return "", nil })
	})
	assert.PanicsWithValue(t, `tool "s": its input type string is not a struct`, func() {
		tool.New("s", "", func(*agent.Context, string) (string, error) { return "", nil })
	})
	assert.True(t, add.Idempotent().IsIdempotent())
	assert.False(t, add.IsIdempotent(), "Idempotent returns a copy")
}

func TestBuiltins(t *testing.T) {
	h := agenttest.New()
	defer h.Close()
	files := map[string]string{
		"a.txt":         "one\ntwo\nthree\n",
		"src/main.go":   "package main\n\nfunc main() { println(\"TODO\") }\n",
		"src/x/util.go": "package x\n// TODO: tidy\n",
		"src/x/bin.dat": "\x00\x01TODO",
		"dup.txt":       "x y x\n",
	}
	lines := make([]string, 2100)
	for i := range lines {
		lines[i] = "line"
	}
	files["long.txt"] = strings.Join(lines, "\n") + "\n"
	for _, tc := range []struct {
		name, tool, input string
		want              callOut
	}{
		{"bash", "bash", `{"command":"cat a.txt | wc -l"}`, callOut{Text: "3\n"}},
		{"bash exit code and stderr", "bash", `{"command":"echo out; echo err >&2; exit 3"}`, callOut{Text: "out\n[stderr]\nerr\n[exit code 3]\n"}},
		{"bash no output", "bash", `{"command":"true"}`, callOut{Text: "[no output, exit code 0]\n"}},
		{"bash timeout", "bash", `{"command":"echo started; sleep 5","timeout":1}`, callOut{Text: "started\n[timed out after 1s: stopped, the output so far is above]\n"}},
		{"bash timeout bound", "bash", `{"command":"true","timeout":601}`, callOut{Input: true, Error: "invalid arguments:\n- /timeout: want at most 600, got 601"}},
		{"read", "read", `{"path":"a.txt"}`, callOut{Text: "1\tone\n2\ttwo\n3\tthree\n"}},
		{"read range", "read", `{"path":"a.txt","offset":2,"limit":1}`, callOut{Text: "2\ttwo\n[lines 2-2 of 3; read on with offset 3]\n"}},
		{"read past the end", "read", `{"path":"a.txt","offset":9}`, callOut{Error: "offset 9 is past the end: the file has 3 lines"}},
		{"read missing", "read", `{"path":"nope.txt"}`, callOut{Error: "nope.txt: no such file or directory"}},
		{"read binary", "read", `{"path":"src/x/bin.dat"}`, callOut{Error: "src/x/bin.dat is not a text file"}},
		{"read escape", "read", `{"path":"../etc/passwd"}`, callOut{Error: "../etc/passwd is outside the sandbox's working directory"}},
		{"write", "write", `{"path":"new/dir/f.txt","content":"hi"}`, callOut{Text: "wrote 2 bytes to new/dir/f.txt"}},
		{"edit", "edit", `{"path":"a.txt","old_string":"two","new_string":"2"}`, callOut{Text: "replaced 1 occurrence in a.txt"}},
		{"edit not unique", "edit", `{"path":"dup.txt","old_string":"x","new_string":"z"}`, callOut{Error: "old_string occurs 2 times in dup.txt: add surrounding text to make it unique, or set replace_all"}},
		{"edit replace all", "edit", `{"path":"dup.txt","old_string":"x","new_string":"z","replace_all":true}`, callOut{Text: "replaced 2 occurrences in dup.txt"}},
		{"edit missing text", "edit", `{"path":"a.txt","old_string":"four","new_string":"4"}`, callOut{Error: "old_string does not occur in a.txt: read the file and copy the text exactly"}},
		{"glob", "glob", `{"pattern":"**/*.go"}`, callOut{Text: "src/main.go\nsrc/x/util.go\n"}},
		{"glob in a path", "glob", `{"pattern":"*.go","path":"src"}`, callOut{Text: "src/main.go\n"}},
		{"glob none", "glob", `{"pattern":"*.rs"}`, callOut{Text: "[no files match *.rs]\n"}},
		{"grep", "grep", `{"pattern":"TODO"}`, callOut{Text: "src/main.go:3:func main() { println(\"TODO\") }\nsrc/x/util.go:2:// TODO: tidy\n"}},
		{"grep include", "grep", `{"pattern":"todo","ignore_case":true,"include":"util.go"}`, callOut{Text: "src/x/util.go:2:// TODO: tidy\n"}},
		{"grep a file", "grep", `{"pattern":"t","path":"a.txt"}`, callOut{Text: "a.txt:2:two\na.txt:3:three\n"}},
		{"grep bad pattern", "grep", `{"pattern":"("}`, callOut{Error: "pattern: error parsing regexp: missing closing ): `(`"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := call(t, h, "builtins-"+strings.ReplaceAll(tc.name, " ", "-"), callIn{Files: files, Tool: tc.tool, Input: json.RawMessage(tc.input)})
			assert.Equal(t, tc.want, got)
		})
	}

	t.Run("read caps a long file", func(t *testing.T) {
		got := call(t, h, "long", callIn{Files: files, Tool: "read", Input: json.RawMessage(`{"path":"long.txt"}`)})
		assert.True(t, strings.HasSuffix(got.Text, "2000\tline\n[lines 1-2000 of 2100; read on with offset 2001]\n"), got.Text[len(got.Text)-80:])
	})
	t.Run("edits and writes are stored", func(t *testing.T) {
		call(t, h, "stored", callIn{Files: files, Tool: "edit", Input: json.RawMessage(`{"path":"a.txt","old_string":"one","new_string":"1"}`)})
		got := call(t, h, "stored", callIn{Tool: "read", Input: json.RawMessage(`{"path":"a.txt","limit":1}`)})
		assert.Equal(t, "1\t1\n[lines 1-1 of 3; read on with offset 2]\n", got.Text)
	})
	t.Run("grep caps its matches", func(t *testing.T) {
		got := call(t, h, "many", callIn{Files: files, Tool: "grep", Input: json.RawMessage(`{"pattern":"line","path":"long.txt"}`)})
		assert.Equal(t, tool.GrepMatches+1, strings.Count(got.Text, "\n"))
		assert.Contains(t, got.Text, "[the first 100 matches")
	})
}
