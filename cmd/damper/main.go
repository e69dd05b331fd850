// Command damper builds damper modules and runs them: locally under wazero
// (run, serve) and on Cloudflare Workers through the pinned wrangler (dev,
// deploy).
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `damper: write AI agents in Go, run them on Cloudflare Workers and locally.

Usage:
  damper init   [--module PATH] [--force] [DIR]
        Write a new project into DIR: a Go module with a hello agent and its
        test, wrangler.toml, package.json pinning wrangler, .gitignore, README.
  damper build  [-o build/damper.wasm] [package]
        Build the module (GOOS=wasip1 reactor) from a main package; write
        manifest.json and the Worker (worker/) beside it.
  damper run    <agent> [payload-json|@file|-] [--id ID] [--sandbox empty|local|container] [--model M]
                [--out FILE] [--json] [--timeout D] [--module build/damper.wasm] [--data .damper/data] [--target name=URL]...
        Run an agent once under wazero, showing what it does as it does it
        (on stderr; a status line on a terminal), then {"run","result"} on
        stdout (or the result in --out FILE). --json: the events as JSON
        lines on stdout, the result last. Exit 0 done, 1 failed, 2 bad
        input, 130 interrupted (SIGINT cancels the run cleanly).
  damper events <agent>/<id> [--run R] [--follow] [--json] [--url URL]
        Print an agent instance's events (or one run's) from damper serve or
        a deployed Worker, over SSE; --follow keeps following, reconnecting
        after a dropped connection. $DAMPER_URL, $DAMPER_TOKEN.
  damper runs   <agent>/<id> [--json] [--limit N] [--url URL]
        List an agent instance's runs and their status, usage and cost.
  damper serve  [--addr 127.0.0.1:8787] [--data .damper/data] [--module build/damper.wasm] [--token-file FILE] [--target name=URL]... [--watch [package]]
        Serve the HTTP API (docs/http.md) under wazero, one log line per
        request. The bearer token comes from $DAMPER_TOKEN or --token-file;
        a non-loopback address needs one. --watch builds first and rebuilds
        when a .go file changes.

  damper dev    [-o build/damper.wasm] [--no-build] [--no-watch] [package] [-- wrangler-args...]
        Build, then run the project's pinned wrangler dev on 127.0.0.1 (npm ci
        first if needed); rebuild when a .go file changes. On loopback no
        token is needed, as with damper serve.
  damper deploy [-o build/damper.wasm] [--no-build] [package] [-- wrangler-args...]
        Build, then run the project's pinned wrangler deploy.
  damper policy ...
        Check and explain policies (damper policy help).
  damper version
        Print damper's version, the module ABI version it speaks, and Go's.
  damper help
        Show this text.

  dev and deploy run in the directory of wrangler.toml. Flags may follow
  the positional arguments.

  Run and serve read the secrets the agents' policies name from the
  environment, and point services elsewhere with $DAMPER_TARGETS
  (name=URL,name=URL) and --target, which wins for its service. dev reads
  secrets from .dev.vars; a deployed Worker from wrangler secret put.

Run "damper <command> -h" for a command's flags.
`

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// dispatch runs one subcommand and returns the process's exit code: 0 on
// success, 1 on failure, 2 on a usage error.
func dispatch(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "init":
		return initCmd(rest, stdout, stderr)
	case "version", "-version", "--version":
		return versionCmd(stdout)
	case "build":
		return buildCmd(rest, stdout, stderr)
	case "run":
		return runCmd(rest, stdin, stdout, stderr)
	case "serve":
		return serveCmd(rest, stderr)
	case "events":
		return eventsCmd(rest, stdout, stderr)
	case "runs":
		return runsCmd(rest, stdout, stderr)
	case "dev", "deploy":
		return wranglerCmd(cmd, rest, stdout, stderr)
	case "policy":
		return policyCmd(rest, stdout, stderr)
	case "sandboxd":
		return sandboxdCmd(rest, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "damper: unknown command %q\n\n%s", cmd, usage)
	return 2
}
