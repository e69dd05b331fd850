// Command module is the module the hosts' ABI tests and the end-to-end
// suite run: the example agents and the probe agents of tests/agents.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o build/test/damper.wasm ./tests/module
package main

import (
	_ "github.com/damperdev/damper/examples/hello" // registers "hello"
	_ "github.com/damperdev/damper/examples/repo"  // registers "repo"
	_ "github.com/damperdev/damper/examples/shell" // registers "shell"
	_ "github.com/damperdev/damper/tests/agents"   // registers the probe.* agents

	_ "github.com/damperdev/damper/sandbox/empty/jq" // the e2e suite runs jq in the shell agent
)

// main is never called: the module is a reactor.
func main() {}
