package tool

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/sandbox"
)

// Builtins are the built-in tools over the sandbox spec names: bash,
// read, write, edit, glob and grep. Every one uses only the sandbox
// surface, so they work the same on every kind. Each call opens the run's
// sandbox (sandbox.Open: cheap once the module instance has it), so the
// tools are data, made once, like any tool:
//
//	var builtins = tool.Builtins(sandbox.Empty())
//
// A module that uses none of them does not link them.
func Builtins(spec sandbox.Spec) []Tool {
	return []Tool{Bash(spec), Read(spec), Write(spec), Edit(spec), Glob(spec), Grep(spec)}
}

// open opens the run's sandbox of spec, for a built-in's call.
func open(ctx *agent.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	sb, err := sandbox.Open(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("open the sandbox: %w", err)
	}
	return sb, nil
}

// Limits of the built-ins.
const (
	// DefaultTimeout and MaxTimeout bound a bash command.
	DefaultTimeout = 2 * time.Minute
	MaxTimeout     = 10 * time.Minute
	// ReadLines is how many lines read returns by default.
	ReadLines = 2000
	// GrepMatches and GlobPaths cap what grep and glob list.
	GrepMatches = 100
	GlobPaths   = 1000
	// maxWalk bounds the entries glob and grep visit.
	maxWalk = 20000
)

// BashIn is the bash tool's arguments.
type BashIn struct {
	Command string `json:"command" jsonschema:"description=A shell script (POSIX sh with bash extensions)\\, run in the working directory"`
	Timeout int    `json:"timeout,omitempty" jsonschema:"description=Seconds before the command is stopped (default 120),minimum=1,maximum=600"`
}

// Bash runs a command in sb's shell, with a timeout (2 minutes unless the
// model asks for another, at most 10). A command that fails is not a tool
// error: the model reads its output and exit code. A command that times
// out keeps what it printed.
func Bash(spec sandbox.Spec) Tool {
	return New("bash", "Runs a shell command in the sandbox's working directory and returns its output and exit code.",
		func(ctx *agent.Context, in BashIn) (string, error) {
			sb, err := open(ctx, spec)
			if err != nil {
				return "", err
			}
			timeout := DefaultTimeout
			if in.Timeout > 0 {
				timeout = min(time.Duration(in.Timeout)*time.Second, MaxTimeout)
			}
			res, err := sb.Exec(ctx, sandbox.Cmd{Script: in.Command, Timeout: timeout})
			if err != nil {
				if res == nil {
					return "", err
				}
				return "", fmt.Errorf("%w (output so far: %s)", err, res.Stdout+res.Stderr)
			}
			var b strings.Builder
			b.WriteString(res.Stdout)
			if res.Stderr != "" {
				if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
					b.WriteByte('\n')
				}
				b.WriteString("[stderr]\n")
				b.WriteString(res.Stderr)
			}
			if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
				b.WriteByte('\n')
			}
			switch {
			case res.TimedOut:
				fmt.Fprintf(&b, "[timed out after %v: stopped, the output so far is above]\n", timeout)
			case res.ExitCode != 0:
				fmt.Fprintf(&b, "[exit code %d]\n", res.ExitCode)
			case b.Len() == 0:
				b.WriteString("[no output, exit code 0]\n")
			}
			if res.Truncated {
				b.WriteString("[the output passed the sandbox's cap and was cut]\n")
			}
			return b.String(), nil
		})
}

// ReadIn is the read tool's arguments.
type ReadIn struct {
	Path   string `json:"path" jsonschema:"description=The file's path\\, relative to the working directory or absolute"`
	Offset int    `json:"offset,omitempty" jsonschema:"description=The first line to read\\, counting from 1,minimum=1"`
	Limit  int    `json:"limit,omitempty" jsonschema:"description=How many lines to read (default 2000),minimum=1"`
}

// Read returns lines of a text file in sb, numbered, 2,000 from the start
// unless the model asks for a range.
func Read(spec sandbox.Spec) Tool {
	return New("read", "Reads a text file, with line numbers. Use offset and limit for a range of a long file.",
		func(ctx *agent.Context, in ReadIn) (string, error) {
			sb, err := open(ctx, spec)
			if err != nil {
				return "", err
			}
			text, err := sb.ReadText(ctx, in.Path)
			if err != nil {
				return "", pathError(err)
			}
			lines := strings.SplitAfter(text, "\n")
			if lines[len(lines)-1] == "" {
				lines = lines[:len(lines)-1]
			}
			if len(lines) == 0 {
				return "[the file is empty]\n", nil
			}
			first := max(in.Offset, 1)
			if first > len(lines) {
				return "", fmt.Errorf("offset %d is past the end: the file has %d lines", first, len(lines))
			}
			limit := in.Limit
			if limit <= 0 {
				limit = ReadLines
			}
			last := min(first-1+limit, len(lines))
			var b strings.Builder
			for i := first; i <= last; i++ {
				b.WriteString(strconv.Itoa(i))
				b.WriteByte('\t')
				b.WriteString(strings.TrimSuffix(lines[i-1], "\n"))
				b.WriteByte('\n')
			}
			if first > 1 || last < len(lines) {
				fmt.Fprintf(&b, "[lines %d-%d of %d", first, last, len(lines))
				if last < len(lines) {
					fmt.Fprintf(&b, "; read on with offset %d", last+1)
				}
				b.WriteString("]\n")
			}
			return b.String(), nil
		}).Idempotent()
}

// WriteIn is the write tool's arguments.
type WriteIn struct {
	Path    string `json:"path" jsonschema:"description=The file's path; missing directories are made"`
	Content string `json:"content" jsonschema:"description=The file's whole new content"`
}

// Write writes a whole file in sb, making its directories.
func Write(spec sandbox.Spec) Tool {
	return New("write", "Writes a file, replacing it if it exists.",
		func(ctx *agent.Context, in WriteIn) (string, error) {
			sb, err := open(ctx, spec)
			if err != nil {
				return "", err
			}
			if err := sb.WriteFile(ctx, in.Path, []byte(in.Content)); err != nil {
				return "", pathError(err)
			}
			return fmt.Sprintf("wrote %d bytes to %s", len(in.Content), in.Path), nil
		}).Idempotent()
}

// EditIn is the edit tool's arguments.
type EditIn struct {
	Path       string `json:"path"`
	OldString  string `json:"old_string" jsonschema:"description=The exact text to replace: unique in the file unless replace_all,minLength=1"`
	NewString  string `json:"new_string" jsonschema:"description=The text to put in its place"`
	ReplaceAll bool   `json:"replace_all,omitempty" jsonschema:"description=Replace every occurrence"`
}

// Edit replaces text in a file of sb: one occurrence that must be unique,
// or every one with replace_all.
func Edit(spec sandbox.Spec) Tool {
	return New("edit", "Replaces old_string with new_string in a text file. old_string must occur exactly once, unless replace_all is set.",
		func(ctx *agent.Context, in EditIn) (string, error) {
			sb, err := open(ctx, spec)
			if err != nil {
				return "", err
			}
			text, err := sb.ReadText(ctx, in.Path)
			if err != nil {
				return "", pathError(err)
			}
			n := strings.Count(text, in.OldString)
			switch {
			case n == 0:
				return "", fmt.Errorf("old_string does not occur in %s: read the file and copy the text exactly", in.Path)
			case n > 1 && !in.ReplaceAll:
				return "", fmt.Errorf("old_string occurs %d times in %s: add surrounding text to make it unique, or set replace_all", n, in.Path)
			}
			if in.OldString == in.NewString {
				return "", errors.New("old_string and new_string are the same: nothing to change")
			}
			if err := sb.WriteFile(ctx, in.Path, []byte(strings.ReplaceAll(text, in.OldString, in.NewString))); err != nil {
				return "", pathError(err)
			}
			if n == 1 {
				return "replaced 1 occurrence in " + in.Path, nil
			}
			return fmt.Sprintf("replaced %d occurrences in %s", n, in.Path), nil
		})
}

// pathError is err as the model should read it: what was wrong with the
// path, not Go's wrapping.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s: no such file or directory", pe.Path)
		case errors.Is(err, sandbox.ErrIsDir):
			return fmt.Errorf("%s is a directory", pe.Path)
		case errors.Is(err, sandbox.ErrNotText):
			return fmt.Errorf("%s is not a text file", pe.Path)
		case errors.Is(err, sandbox.ErrEscape):
			return fmt.Errorf("%s is outside the sandbox's working directory", pe.Path)
		}
	}
	return err
}
