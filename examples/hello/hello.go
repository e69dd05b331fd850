// Package hello is the smallest useful damper agent: it greets a name and
// counts how often its agent instance was visited. Start reading here.
//
// Run it against a local host with
//
//	curl -H "Authorization: Bearer $DAMPER_TOKEN" \
//	  -d '{"name":"Ada"}' localhost:8787/agents/hello/alice
//
// and get {"run":"r_…","result":{"greeting":"Hello, Ada!","visits":1}};
// the next POST to /agents/hello/alice answers visits 2, while
// /agents/hello/bob is another instance, with its own count.
package hello

import (
	"fmt"

	"github.com/damperdev/damper/runtime/agent"
)

// Input is the payload. A field with omitempty is optional; without it,
// the payload must carry it. The host refuses a payload with a member Input
// does not have, or of the wrong type, with a 400 before the handler runs.
type Input struct {
	Name string `json:"name,omitempty"`
}

// Output is the result: it becomes the "result" of the HTTP answer.
type Output struct {
	Greeting string `json:"greeting"`
	Visits   int    `json:"visits"`
}

// Agents register in a package init: a module instance knows every agent
// before its first run, and the manifest lists them with the JSON Schemas
// of Input and Output.
func init() {
	agent.Register("hello", greet)
}

// greet is the handler. ctx is the run: the only way out of the module.
func greet(ctx *agent.Context, in Input) (Output, error) {
	name := in.Name
	if name == "" {
		name = "world"
	}

	// State is durable and belongs to the agent instance (the {id} of the
	// URL): a Durable Object's SQLite on Workers, a SQLite file locally.
	// Runs of one instance never overlap, so reading then writing the
	// count is safe.
	var visits int
	if _, err := ctx.State().Get("visits", &visits); err != nil {
		return Output{}, err // a 500 agent_error; the count is unchanged
	}
	visits++
	if err := ctx.State().Set("visits", visits); err != nil {
		return Output{}, err
	}

	return Output{Greeting: fmt.Sprintf("Hello, %s!", name), Visits: visits}, nil
}
