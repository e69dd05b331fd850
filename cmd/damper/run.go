package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/damperdev/damper/local"
)

func runCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "[flags] <agent> [payload-json|-]", stderr)
	module := fs.String("module", defaultModule, "the module to run")
	data := fs.String("data", ".damper/data", "`directory` of the agent instances' SQLite databases")
	id := fs.String("id", "default", "the agent instance")
	timeout := fs.Duration("timeout", 0, "cancel the run after this long (0: no limit)")
	verbose := fs.Bool("v", false, "log at debug level (every event, every module instance)")
	targets := targetFlag(fs)
	pos, rest, err := parseArgs(fs, args)
	if err != nil {
		return parseError(err)
	}
	pos = append(pos, rest...) // after "--", a payload may start with '-'
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return 2
	}
	overrides, err := targets()
	if err != nil {
		fmt.Fprintf(stderr, "damper run: %v\n", err)
		return 2
	}
	agent := pos[0]
	var payload []byte
	if len(pos) == 2 {
		payload = []byte(pos[1])
		if pos[1] == "-" {
			var err error
			if payload, err = io.ReadAll(stdin); err != nil {
				fmt.Fprintf(stderr, "damper run: reading the payload: %v\n", err)
				return 1
			}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The events are printed below, each once; the debug log would repeat them.
	logger := slog.New(dropEvents{newLogger(stderr, *verbose).Handler()})
	cfg, err := withSandboxes(local.NewConfig())
	if err != nil {
		fmt.Fprintf(stderr, "damper run: %v\n", err)
		return 1
	}
	host, err := openHost(ctx, *module, cfg.
		WithDataDir(*data).
		WithLogger(logger).
		WithRunTimeout(*timeout).
		WithTargets(overrides).
		WithModel(os.Getenv("DAMPER_MODEL")).
		WithSandbox(os.Getenv("DAMPER_SANDBOX")))
	if err != nil {
		fmt.Fprintf(stderr, "damper run: %v\n", err)
		return 1
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		host.Close(closeCtx)
	}()

	warnMissingSecrets(stderr, "run", host.Manifest(), envSet, func(n string) string {
		return "set it in the environment, e.g. " + n + "=... damper run"
	})
	events := json.NewEncoder(stderr)
	res, err := host.Run(ctx, agent, *id, payload, local.OnEvent(func(ev local.Event) {
		events.Encode(map[string]any{"event": ev})
	}))
	if err != nil {
		var he *local.Error
		if !errors.As(err, &he) {
			he = &local.Error{Type: "internal", Message: err.Error()}
		}
		printJSON(stdout, map[string]*local.Error{"error": he})
		return 1
	}
	printJSON(stdout, res)
	return 0
}

// openHost reads and compiles the module at path.
func openHost(ctx context.Context, path string, cfg local.Config) (*local.Host, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (build it with: damper build -o %s <package>)", err, path)
		}
		return nil, err
	}
	host, err := local.New(ctx, wasm, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return host, nil
}

// envSet reports whether the environment has a non-empty name.
func envSet(name string) bool {
	v, ok := os.LookupEnv(name)
	return ok && v != ""
}

// dropEvents leaves out the host's debug record of each event, for a
// command that prints the events itself.
type dropEvents struct{ slog.Handler }

func (d dropEvents) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelDebug && r.Message == "event" {
		return nil
	}
	return d.Handler.Handle(ctx, r)
}

func (d dropEvents) WithAttrs(attrs []slog.Attr) slog.Handler {
	return dropEvents{d.Handler.WithAttrs(attrs)}
}

func (d dropEvents) WithGroup(name string) slog.Handler { return dropEvents{d.Handler.WithGroup(name)} }

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func printJSON(w io.Writer, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(w, "{\"error\":{\"type\":\"internal\",\"message\":%q}}\n", err.Error())
		return
	}
	w.Write(append(b, '\n'))
}
