package main

import _ "github.com/damperdev/damper/examples/hello"

func main() {}
