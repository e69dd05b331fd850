// Command initexit is a module whose init exits.
package main

import (
	"fmt"
	"os"

	_ "github.com/damperdev/damper/runtime/agent"
)

func init() {
	fmt.Fprintln(os.Stderr, "initexit: giving up (a test fixture)")
	os.Exit(3)
}

func main() {}
