// Package shell is an agent that runs a shell script in its agent
// instance's sandbox, the empty kind by default: an in-memory file system
// and an in-process shell inside the module, so it works on Workers and
// locally alike, with no container.
//
//	damper run shell '{"script":"ls | wc -l"}'
//	damper run shell '{"files":{"a.txt":"one\ntwo\n"},"script":"wc -l a.txt"}'
//
// The sandbox belongs to the agent instance: files written by one run are
// there for the next run of the same instance ({id} in the URL).
package shell

import (
	"fmt"
	"maps"
	"slices"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/sandbox"
	_ "github.com/damperdev/damper/sandbox/container" // links the container kind: damper run --sandbox container
	_ "github.com/damperdev/damper/sandbox/empty"     // links the empty kind: its shell and commands
	_ "github.com/damperdev/damper/sandbox/local"     // links the local kind: damper run --sandbox local
)

// Input is a script to run, with files to write into the sandbox's
// working directory first and the script's standard input.
type Input struct {
	Script string            `json:"script"`
	Files  map[string]string `json:"files,omitempty"`
	Stdin  string            `json:"stdin,omitempty"`
}

// Output is how the script ended.
type Output struct {
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	ExitCode  int    `json:"exit_code"`
	Truncated bool   `json:"truncated"`
}

func init() {
	agent.Register("shell", run)
}

func run(ctx *agent.Context, in Input) (Output, error) {
	sb, err := sandbox.Open(ctx, sandbox.Empty())
	if err != nil {
		return Output{}, err
	}
	for _, name := range slices.Sorted(maps.Keys(in.Files)) {
		if err := sb.WriteFile(ctx, name, []byte(in.Files[name])); err != nil {
			return Output{}, fmt.Errorf("write %s: %w", name, err)
		}
	}
	res, err := sb.Exec(ctx, sandbox.Cmd{Script: in.Script, Stdin: in.Stdin})
	if err != nil {
		return Output{}, err
	}
	return Output{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode, Truncated: res.Truncated}, nil
}
