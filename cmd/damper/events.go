package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/damperdev/damper/local"
	"github.com/damperdev/damper/runtime/event"
)

// defaultURL is where damper serve listens by default.
const defaultURL = "http://127.0.0.1:8787"

// apiFlags are the flags of the commands that talk to a host over HTTP.
type apiFlags struct {
	url, tokenFile *string
}

func addAPIFlags(fs interface {
	String(name, value, usage string) *string
}) apiFlags {
	return apiFlags{
		url:       fs.String("url", "", "the host's base `URL`: damper serve's, or a deployed Worker's (default $DAMPER_URL, else "+defaultURL+")"),
		tokenFile: fs.String("token-file", "", "`file` holding the bearer token (default: $DAMPER_TOKEN)"),
	}
}

// client is what the commands send requests with.
func (f apiFlags) client() (base, token string, err error) {
	base = *f.url
	if base == "" {
		base = os.Getenv("DAMPER_URL")
	}
	if base == "" {
		base = defaultURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("--url %q: want http(s)://host[:port]", base)
	}
	token, err = readToken(*f.tokenFile)
	return strings.TrimRight(base, "/"), token, err
}

// splitInstance reads "agent/id".
func splitInstance(s string) (agent, id string, err error) {
	agent, id, ok := strings.Cut(s, "/")
	if !ok || !local.ValidName(agent) || !local.ValidName(id) {
		return "", "", fmt.Errorf("%q: want <agent>/<id>, each 1 to 128 of A-Z a-z 0-9 . _ -", s)
	}
	return agent, id, nil
}

// apiError is a host's error answer.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Type != "" {
		return fmt.Errorf("%s: %s: %s", resp.Status, e.Error.Type, e.Error.Message)
	}
	return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
}

func eventsCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("events", "<agent>/<id> [--run R] [--follow] [--url URL] [--json]", stderr)
	runID := fs.String("run", "", "only the events of run `R`")
	follow := fs.Bool("follow", false, "keep following: new events as they come (a run's until it ends), reconnecting after a dropped connection")
	jsonOut := fs.Bool("json", false, "print each event as a JSON line")
	verbose := fs.Bool("v", false, "show every policy decision")
	api := addAPIFlags(fs)
	pos, rest, err := parseArgs(fs, args)
	if err != nil {
		return parseError(err)
	}
	pos = append(pos, rest...)
	if len(pos) != 1 {
		fs.Usage()
		return exitBadInput
	}
	agent, id, err := splitInstance(pos[0])
	if err == nil && *runID != "" && !local.ValidName(*runID) {
		err = fmt.Errorf("--run %q is not a run id", *runID)
	}
	if err != nil {
		fmt.Fprintf(stderr, "damper events: %v\n", err)
		return exitBadInput
	}
	base, token, err := api.client()
	if err != nil {
		fmt.Fprintf(stderr, "damper events: %v\n", err)
		return exitBadInput
	}
	path := "/agents/" + agent + "/" + id + "/events"
	if *runID != "" {
		path = "/agents/" + agent + "/" + id + "/runs/" + *runID + "/events"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	show := newRenderer(stdout, false, *verbose).event
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		show = func(e event.Envelope) { enc.Encode(e) }
	}
	f := &follower{base: base, path: path, token: token, follow: *follow, runID: *runID, show: show, stderr: stderr}
	if err := f.run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "damper events: %v\n", err)
		return exitFailed
	}
	if ctx.Err() != nil {
		return exitInterrupted
	}
	return exitOK
}

// follower reads an event stream over SSE, and, following, reconnects
// after a dropped connection with Last-Event-ID: each event is shown
// once, in order.
type follower struct {
	base, path, token string
	follow            bool
	runID             string
	show              func(event.Envelope)
	stderr            io.Writer
	last              int64
}

// retryFor is how long a follower keeps trying to reconnect.
const retryFor = 2 * time.Minute

func (f *follower) run(ctx context.Context) error {
	var failingSince time.Time
	backoff := 250 * time.Millisecond
	for {
		ended, err := f.once(ctx)
		if ended || ctx.Err() != nil {
			return err
		}
		var final *finalError
		if errors.As(err, &final) || (err == nil && !f.follow) {
			return err
		}
		if err == nil {
			failingSince, backoff = time.Time{}, 250*time.Millisecond
			continue // the stream ended without its run's end: follow on
		}
		if failingSince.IsZero() {
			failingSince = time.Now()
		}
		if time.Since(failingSince) > retryFor {
			return fmt.Errorf("giving up after %s: %w", retryFor, err)
		}
		fmt.Fprintf(f.stderr, "damper events: %v; reconnecting after event %d\n", err, f.last)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// finalError is an answer that reconnecting will not change (4xx).
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }

// once reads the stream once; ended reports that it has nothing more to
// give (a run's end, or the log's end without following).
func (f *follower) once(ctx context.Context) (ended bool, err error) {
	u := f.base + f.path
	if !f.follow {
		u += "?follow=0"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return true, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if f.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	if f.last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(f.last, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := apiError(resp)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			return true, &finalError{err}
		}
		return false, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0 && data != nil:
			var e event.Envelope
			if err := json.Unmarshal(data, &e); err != nil {
				return true, fmt.Errorf("an event that is not JSON: %w", err)
			}
			data = nil
			if e.Seq <= f.last {
				continue // already shown
			}
			f.last = e.Seq
			f.show(e)
			if f.runID != "" && event.Terminal(e.Type) {
				return true, nil
			}
		case len(line) > 6 && string(line[:6]) == "data: ":
			data = append([]byte(nil), line[6:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	// The host ended the stream: without following, that is its end.
	return !f.follow, nil
}

func runsCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("runs", "<agent>/<id> [--url URL] [--json] [--limit N]", stderr)
	jsonOut := fs.Bool("json", false, "print the runs as the host answers them (JSON)")
	limit := fs.Int("limit", 20, "list at most `N` runs, the newest first")
	api := addAPIFlags(fs)
	pos, rest, err := parseArgs(fs, args)
	if err != nil {
		return parseError(err)
	}
	pos = append(pos, rest...)
	if len(pos) != 1 {
		fs.Usage()
		return exitBadInput
	}
	agent, id, err := splitInstance(pos[0])
	if err == nil && (*limit < 1 || *limit > 1000) {
		err = fmt.Errorf("--limit %d: want 1 to 1000", *limit)
	}
	if err != nil {
		fmt.Fprintf(stderr, "damper runs: %v\n", err)
		return exitBadInput
	}
	base, token, err := api.client()
	if err != nil {
		fmt.Fprintf(stderr, "damper runs: %v\n", err)
		return exitBadInput
	}
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/agents/%s/%s/runs?limit=%d", base, agent, id, *limit), nil)
	if err != nil {
		fmt.Fprintf(stderr, "damper runs: %v\n", err)
		return exitFailed
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "damper runs: %v\n", err)
		return exitFailed
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "damper runs: %v\n", apiError(resp))
		return exitFailed
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintf(stderr, "damper runs: %v\n", err)
		return exitFailed
	}
	if *jsonOut {
		stdout.Write(body)
		return exitOK
	}
	var list struct{ Runs []local.Run }
	if err := json.Unmarshal(body, &list); err != nil {
		fmt.Fprintf(stderr, "damper runs: the host's answer: %v\n", err)
		return exitFailed
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTATUS\tMODE\tCREATED\tDURATION\tATTEMPTS\tTOKENS\tCOST\tERROR")
	for _, r := range list.Runs {
		dur := "-"
		if !r.Started.IsZero() && !r.Finished.IsZero() {
			dur = elapsed(r.Finished.Sub(r.Started))
		}
		u := r.Usage
		errText := ""
		if r.Error != nil {
			errText = r.Error.Type + ": " + short(r.Error.Message, 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t$%.4f\t%s\n", r.ID, r.Status, r.Mode, r.Created.Local().Format(time.DateTime),
			dur, r.Attempts, tokens(u.InputTokens+u.OutputTokens+u.CacheReadTokens+u.CacheWriteTokens), r.Cost, errText)
	}
	tw.Flush()
	return exitOK
}
