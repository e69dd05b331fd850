// Command sandboxd serves a sandbox's files and shell over HTTP (package
// sandbox/sandboxd): the process inside the container kind's container,
// and the child process the local host starts per agent instance.
//
//	sandboxd [--root DIR] [--listen ADDR] [--bridge LISTEN=unix:PATH]... [--loopback]
//
// --root is the working directory (default /workspace, created if
// missing); --listen is host:port (default :8080, the port the Workers
// host reaches) or unix:PATH. Commands get sandboxd's own environment,
// without its SANDBOXD_* settings: whoever starts it decides what they
// see, and it must hold no secret.
//
// --bridge forwards every TCP connection to LISTEN (inside sandboxd's
// network namespace) to a unix socket outside it; the local host uses it
// to give a child with no network of its own one way out, its egress
// proxy. --loopback brings up the loopback interface of a new network
// namespace first (Linux).
package main

import (
	"fmt"
	"os"

	"github.com/damperdev/damper/sandbox/sandboxd"
)

func main() {
	if err := sandboxd.Main(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd:", err)
		os.Exit(1)
	}
}
