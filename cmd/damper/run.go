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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/damperdev/damper/local"
	"github.com/damperdev/damper/runtime/event"
)

// Exit codes of damper run, as CI jobs read them.
const (
	exitOK          = 0
	exitFailed      = 1   // the run failed (or the host could not run it)
	exitBadInput    = 2   // flags, payload, agent or instance the run cannot take
	exitInterrupted = 130 // SIGINT: the run was canceled cleanly
)

// badInput are the error types that mean the input was wrong, not the run.
var badInput = map[string]bool{"invalid_name": true, "invalid_json": true, "invalid_payload": true, "not_found": true, "invalid_request": true}

func runCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "<agent> [payload-json|@file|-] [flags]", stderr)
	module := fs.String("module", defaultModule, "the module to run")
	data := fs.String("data", ".damper/data", "`directory` of the agent instances' SQLite databases")
	id := fs.String("id", "default", "the agent instance")
	sandbox := fs.String("sandbox", "", "the sandbox `kind` for this run: empty, local or container (default $DAMPER_SANDBOX, else the agent's choice)")
	model := fs.String("model", "", "the `provider/model` the harness uses where the agent names none (default $DAMPER_MODEL)")
	outFile := fs.String("out", "", "write the result to `file` instead of stdout")
	jsonOut := fs.Bool("json", false, "print the events as JSON lines on stdout, then the result (or the error) as the last line")
	timeout := fs.Duration("timeout", 0, "cancel the run after this long (0: no limit)")
	verbose := fs.Bool("v", false, "log at debug level, and show every policy decision")
	targets := targetFlag(fs)
	pos, rest, err := parseArgs(fs, args)
	if err != nil {
		return parseError(err)
	}
	pos = append(pos, rest...) // after "--", a payload may start with '-'
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return exitBadInput
	}
	switch *sandbox {
	case "", "empty", "local", "container":
	default:
		fmt.Fprintf(stderr, "damper run: --sandbox %q: want empty, local or container\n", *sandbox)
		return exitBadInput
	}
	overrides, err := targets()
	if err != nil {
		fmt.Fprintf(stderr, "damper run: %v\n", err)
		return exitBadInput
	}
	agent := pos[0]
	var payload []byte
	if len(pos) == 2 {
		if payload, err = readPayloadArg(pos[1], stdin); err != nil {
			fmt.Fprintf(stderr, "damper run: %v\n", err)
			return exitBadInput
		}
		if !json.Valid(payload) {
			fmt.Fprintf(stderr, "damper run: the payload is not one JSON value\n")
			return exitBadInput
		}
	}

	// The events are rendered below, each once; the debug log would repeat them.
	logger := slog.New(dropEvents{newLogger(stderr, *verbose).Handler()})
	cfg, err := eventEnv(local.NewConfig().
		WithDataDir(*data).
		WithLogger(logger).
		WithRunTimeout(*timeout).
		WithTargets(overrides).
		WithModel(os.Getenv("DAMPER_MODEL")).
		WithSandbox(os.Getenv("DAMPER_SANDBOX")))
	if err != nil {
		fmt.Fprintf(stderr, "damper run: %v\n", err)
		return exitBadInput
	}
	if cfg, err = withSandboxes(cfg); err != nil {
		fmt.Fprintf(stderr, "damper run: %v\n", err)
		return exitBadInput
	}
	host, err := openHost(context.Background(), *module, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "damper run: %v\n", err)
		return exitFailed
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		host.Close(closeCtx)
	}()
	// Only the run's agent: the module's other agents do not run here.
	m := host.Manifest()
	m.Agents = slices.DeleteFunc(slices.Clone(m.Agents), func(a local.AgentInfo) bool { return a.Name != agent })
	warnMissingSecrets(stderr, "run", m, envSet, func(n string) string {
		return "set it in the environment, e.g. " + n + "=... damper run"
	})

	// What the run does: JSON lines on stdout, or lines for people on
	// stderr (with a live status line on a terminal).
	var (
		show func(local.Event)
		rend *renderer
		enc  = json.NewEncoder(stdout)
	)
	if *jsonOut {
		show = func(e local.Event) { enc.Encode(e) }
	} else {
		rend = newRenderer(stderr, isTerminal(os.Stderr) && stderr == io.Writer(os.Stderr), *verbose)
		show = rend.event
	}
	ended := make(chan local.Run, 1)
	run, err := host.Start(context.Background(), agent, *id, payload,
		local.Mode(local.ModeCLI), local.Model(*model), local.Sandbox(*sandbox),
		local.OnEvent(show), local.OnEnd(func(r local.Run) { ended <- r }))
	if err != nil {
		if rend != nil {
			rend.stop()
		}
		return report(stdout, stderr, *jsonOut, *outFile, local.Run{}, err)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var final local.Run
	interrupted := false
	for done := false; !done; {
		select {
		case final = <-ended:
			done = true
		case <-sigs:
			if interrupted {
				// A second interrupt does not wait for the cancellation.
				fmt.Fprintln(stderr, "damper run: interrupted again; exiting")
				return exitInterrupted
			}
			interrupted = true
			fmt.Fprintln(stderr, "\ndamper run: interrupted; canceling the run (again to exit at once)")
			go host.Cancel(context.Background(), agent, *id, run.ID, event.CancelInterrupted)
		}
	}
	if rend != nil {
		rend.stop()
	}
	code := report(stdout, stderr, *jsonOut, *outFile, final, nil)
	if interrupted && final.Status == local.StatusCanceled {
		return exitInterrupted
	}
	return code
}

// readPayloadArg reads the payload argument: "-" is stdin, "@file" a
// file, anything else the JSON itself.
func readPayloadArg(arg string, stdin io.Reader) ([]byte, error) {
	switch {
	case arg == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("reading the payload from stdin: %w", err)
		}
		return b, nil
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, fmt.Errorf("reading the payload: %w", err)
		}
		return b, nil
	}
	return []byte(arg), nil
}

// report writes how the run ended (its result, or its error, or the error
// that kept it from starting) and returns the exit code.
func report(stdout, stderr io.Writer, jsonOut bool, outFile string, r local.Run, startErr error) int {
	var he *local.Error
	switch {
	case startErr != nil:
		if !errors.As(startErr, &he) {
			he = &local.Error{Type: "internal", Message: startErr.Error()}
		}
	case r.Status == local.StatusDone:
	case r.Error != nil:
		he = &local.Error{Type: r.Error.Type, Message: r.Error.Message, Status: r.Error.Status}
	default:
		he = &local.Error{Type: "internal", Message: "the run ended with status " + r.Status}
	}
	if he != nil {
		body := map[string]*local.Error{"error": he}
		if jsonOut {
			json.NewEncoder(stdout).Encode(body)
		} else {
			printJSON(stdout, body)
		}
		if badInput[he.Type] {
			return exitBadInput
		}
		return exitFailed
	}
	res := runAnswer{Run: r.ID, Result: r.Result}
	if outFile != "" {
		b, err := json.MarshalIndent(res.Result, "", "  ")
		if err == nil {
			err = os.WriteFile(outFile, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(stderr, "damper run: writing the result: %v\n", err)
			return exitFailed
		}
	}
	switch {
	case jsonOut:
		json.NewEncoder(stdout).Encode(res)
	case outFile == "":
		printJSON(stdout, res)
	}
	return exitOK
}

// runAnswer is what damper run prints of a run that ended done, as the
// HTTP API answers a synchronous run.
type runAnswer struct {
	Run    string          `json:"run"`
	Result json.RawMessage `json:"result"`
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
