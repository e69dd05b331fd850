// Command module is the example module: every agent of examples/, built
// into one WebAssembly module (make build writes build/damper.wasm):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o build/damper.wasm ./examples/module
package main

import (
	_ "github.com/damperdev/damper/examples/hello" // registers "hello"
	_ "github.com/damperdev/damper/examples/repo"  // registers "repo"
	_ "github.com/damperdev/damper/examples/shell" // registers "shell"
)

// main is never called: the module is a reactor, driven through its
// exports. Agents register in package init functions.
func main() {}
