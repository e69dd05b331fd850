package main

import (
	_ "github.com/damperdev/damper/examples/hello"
	_ "github.com/damperdev/damper/examples/shell"
)

func main() {}
