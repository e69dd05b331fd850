// Command testmodel is the example module with the test model linked
// (runtime/model/modeltest: DAMPER_MODEL=test/schema), which make run uses
// when no provider key is set. The shipped module (examples/module) leaves
// the test model out: it is for trying and testing agents, not for
// production, and it would cost the module ~32 KB gzip.
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o build/testmodel/damper.wasm ./examples/module/testmodel
package main

import (
	_ "github.com/damperdev/damper/examples/hello"          // registers "hello"
	_ "github.com/damperdev/damper/examples/repo"           // registers "repo"
	_ "github.com/damperdev/damper/examples/shell"          // registers "shell"
	_ "github.com/damperdev/damper/examples/triage"         // registers "triage"
	_ "github.com/damperdev/damper/runtime/model/modeltest" // the provider "test": test/schema
)

// main is never called: the module is a reactor.
func main() {}
