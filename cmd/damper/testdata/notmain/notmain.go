// Package notmain is an agent package built as if it were the module.
package notmain

import "github.com/damperdev/damper/runtime/agent"

func init() {
	agent.Register("x", func(ctx *agent.Context, in struct{}) (struct{}, error) { return struct{}{}, nil })
}
