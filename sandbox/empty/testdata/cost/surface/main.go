package main

import (
	_ "github.com/damperdev/damper/examples/hello"
	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/sandbox"
)

func init() {
	agent.Register("surface", func(ctx *agent.Context, _ struct{}) (string, error) {
		sb, err := sandbox.Open(ctx, sandbox.Empty())
		if err != nil {
			return "", err
		}
		return sb.Dir(), nil
	})
}

func main() {}
