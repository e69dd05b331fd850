//go:build !wasip1

package tool_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/damperdev/damper/runtime/agent"
	"github.com/damperdev/damper/runtime/agent/agenttest"
	"github.com/damperdev/damper/runtime/tool"
)

// WeatherIn is the tool's arguments: their schema comes from the type.
type WeatherIn struct {
	City  string `json:"city" jsonschema:"description=The city's name,minLength=1"`
	Units string `json:"units,omitempty" jsonschema:"enum=metric,enum=imperial"`
}

var weather = tool.New("weather", "Tells the weather of a city.", func(ctx *agent.Context, in WeatherIn) (map[string]any, error) {
	return map[string]any{"city": in.City, "sky": "clear"}, nil
})

func init() {
	agent.Register("example.tool", func(ctx *agent.Context, input json.RawMessage) (string, error) {
		out, err := weather.Call(ctx, input)
		if err != nil {
			return "tool error: " + err.Error(), nil // what the model would read
		}
		return out, nil
	})
}

// New makes a tool of a Go function: the model's arguments are validated
// against the schema of its input type, every problem listed, before the
// function runs.
func ExampleNew() {
	fmt.Println(string(weather.Schema()))
	h := agenttest.New()
	defer h.Close()
	for _, args := range []string{`{"city":"Paris"}`, `{"city":"","units":"kelvin"}`} {
		out, _ := h.Run(context.Background(), "example.tool", "demo", json.RawMessage(args))
		var s string
		_ = json.Unmarshal(out, &s)
		fmt.Println(s)
	}
	// Output:
	// {"additionalProperties":false,"properties":{"city":{"description":"The city's name","minLength":1,"type":"string"},"units":{"enum":["metric","imperial"],"type":"string"}},"required":["city"],"type":"object"}
	// {"city":"Paris","sky":"clear"}
	// tool error: invalid arguments:
	// - /city: want at least 1 characters, got 0
	// - /units: want one of "metric", "imperial"
}
