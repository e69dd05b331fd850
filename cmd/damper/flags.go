package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

func newFlagSet(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("damper "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: damper %s %s\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses args with fs, accepting flags after positional
// arguments too (`damper run hello '{}' --id me`), as most command-line
// tools do; package flag alone stops at the first positional one. It
// returns the positional arguments, and what follows a "--" (which ends
// the flags), or nil when there is no "--".
func parseArgs(fs *flag.FlagSet, args []string) (positional, afterDashes []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		rest := fs.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return positional, append([]string{}, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// parseError is the exit code for a flag parse error: 0 for -h.
func parseError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
