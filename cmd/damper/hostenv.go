package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/damperdev/damper/local"
)

// eventEnv applies what the environment says of events to cfg, as the
// Worker reads the same names from its vars (docs/events.md):
// DAMPER_EVENT_RETENTION (events kept per agent instance), DAMPER_HEARTBEAT
// (between SSE comments) and the OpenTelemetry export: the conventional
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or OTEL_EXPORTER_OTLP_ENDPOINT with
// /v1/traces added, and OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT.
func eventEnv(cfg local.Config) (local.Config, error) {
	if v := os.Getenv("DAMPER_EVENT_RETENTION"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return cfg, fmt.Errorf("DAMPER_EVENT_RETENTION %q: want a whole number ≥ 1", v)
		}
		cfg = cfg.WithEventRetention(n)
	}
	if v := os.Getenv("DAMPER_HEARTBEAT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("DAMPER_HEARTBEAT %q: want a duration such as 15s", v)
		}
		cfg = cfg.WithHeartbeat(d)
	}
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if base := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); endpoint == "" && base != "" {
		endpoint = strings.TrimRight(base, "/") + "/v1/traces"
	}
	content := strings.EqualFold(os.Getenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"), "true")
	return cfg.WithTelemetry(endpoint, content), nil
}
