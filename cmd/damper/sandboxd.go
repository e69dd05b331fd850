package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/damperdev/damper/local"
	"github.com/damperdev/damper/sandbox/sandboxd"
)

// sandboxdCmd is `damper sandboxd`: the server of the container kind
// (package sandbox/sandboxd), which the local host runs as a child
// process per agent instance. Not for people: the host passes its flags.
func sandboxdCmd(args []string, stderr io.Writer) int {
	if err := sandboxd.Main(args); err != nil {
		fmt.Fprintln(stderr, "damper sandboxd:", err)
		return 1
	}
	return 0
}

// withSandboxes configures the local host's container kind: sandboxd is
// this very binary (`damper sandboxd`) unless DAMPER_SANDBOXD names
// another command; DAMPER_SANDBOX_IDLE (a Go duration) puts an idle
// container to sleep, DAMPER_SANDBOX_ISOLATION is auto, off or require.
func withSandboxes(cfg local.Config) (local.Config, error) {
	argv := strings.Fields(os.Getenv("DAMPER_SANDBOXD"))
	if len(argv) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return cfg, fmt.Errorf("find damper's own binary for sandboxd: %w", err)
		}
		argv = []string{exe, "sandboxd"}
	}
	var idle time.Duration
	if v := os.Getenv("DAMPER_SANDBOX_IDLE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return cfg, fmt.Errorf("DAMPER_SANDBOX_IDLE %q is not a duration such as 30s or 10m", v)
		}
		idle = d
	}
	return cfg.WithSandboxd(argv, idle, os.Getenv("DAMPER_SANDBOX_ISOLATION")), nil
}
