// Command initpanic is a module whose init panics, as an agent's does when
// policy.New fails and the README's pattern panics with the error.
package main

import (
	"errors"

	"github.com/damperdev/damper/runtime/agent"
)

func init() {
	agent.Register("x", func(ctx *agent.Context, in struct{}) (struct{}, error) { return struct{}{}, nil })
	panic(errors.New("policy: service \"api\": bad rule (a test fixture)"))
}

func main() {}
