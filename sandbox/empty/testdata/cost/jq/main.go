package main

import (
	_ "github.com/damperdev/damper/examples/hello"
	_ "github.com/damperdev/damper/examples/shell"
	_ "github.com/damperdev/damper/sandbox/empty/jq"
)

func main() {}
