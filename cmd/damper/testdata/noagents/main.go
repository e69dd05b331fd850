// Command noagents imports the runtime and registers no agent.
package main

import _ "github.com/damperdev/damper/runtime/agent"

func main() {}
