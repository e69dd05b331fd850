package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/damperdev/damper/internal/scaffold"
	"github.com/damperdev/damper/internal/wrangler"
	"github.com/damperdev/damper/worker"
)

// devVar is the var `damper dev` gives the Worker: with it, and only for
// requests to a loopback host, the Worker needs no DAMPER_TOKEN, as
// `damper serve` on loopback needs none (worker/index.js).
const devVar = "DAMPER_DEV:1"

// wranglerCmd builds the module, then runs `wrangler dev` or `wrangler
// deploy` in the project (the directory holding wrangler.toml) with the
// arguments after "--". dev rebuilds whenever a .go file changes.
func wranglerCmd(name string, args []string, stdout, stderr io.Writer) int {
	usage := "[-o build/damper.wasm] [--no-build] [package] [-- wrangler-args...]"
	if name == "dev" {
		usage = "[-o build/damper.wasm] [--no-build] [--no-watch] [package] [-- wrangler-args...]"
	}
	fs := newFlagSet(name, usage, stderr)
	out := fs.String("o", defaultModule, "`path` of the module; the Worker wrangler.toml runs is written beside it")
	noBuild := fs.Bool("no-build", false, "use the module already built (and do not watch)")
	noWatch := new(bool)
	if name == "dev" {
		noWatch = fs.Bool("no-watch", false, "do not rebuild when a .go file changes")
	}
	pos, wranglerArgs, err := parseArgs(fs, args)
	if err != nil {
		return parseError(err)
	}
	if len(pos) > 1 {
		fs.Usage()
		return 2
	}
	pkg := "."
	if len(pos) == 1 {
		pkg = pos[0]
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "damper %s: %s\n", name, fmt.Sprintf(format, a...))
		return 1
	}
	if _, err := os.Stat("wrangler.toml"); err != nil {
		wd, _ := os.Getwd()
		return fail("no wrangler.toml in %s: run damper %s in a project that has one (damper init DIR writes a project with one)", wd, name)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var w *watcher
	if name == "dev" && !*noBuild && !*noWatch {
		if w, err = newWatcher(ctx, pkg, filepath.Dir(*out)); err != nil {
			return fail("%v", err)
		}
	}
	var mod *module
	if *noBuild {
		if _, err := os.Stat(*out); err != nil {
			return fail("%v (build it with: damper build -o %s <package>)", err, *out)
		}
		// The Worker is this damper's, whatever built the module.
		if err := worker.Write(filepath.Dir(*out), filepath.Base(*out)); err != nil {
			return fail("%v", err)
		}
	} else {
		mod, err = compileModule(ctx, pkg)
		if err == nil {
			err = mod.write(*out)
		}
		if err != nil {
			return fail("%v", err)
		}
		mod.report(stdout, *out)
	}
	if err := checkMain(*out); err != nil {
		return fail("%v", err)
	}
	// deploy always builds the image (wrangler pushes it); dev only when
	// wrangler dev runs containers ([dev] enable_containers).
	withSandboxd := func(devContainers bool) bool { return name == "deploy" || devContainers }
	if err := prepareImage(ctx, name, withSandboxd, stdout); err != nil {
		return fail("%v", err)
	}
	if err := ensureWrangler(name, stdout, stderr); err != nil {
		return fail("%v", err)
	}
	if mod != nil {
		secretHints(stderr, name, mod)
	}
	stop() // from here on, Ctrl-C is wrangler's to handle

	var wargs []string
	if name == "dev" {
		wargs = devArgs(wranglerArgs)
	} else {
		wargs = append([]string{name}, wranglerArgs...)
	}
	// wrangler gets the terminal's signals itself (same process group);
	// ignoring them here keeps damper alive to return wrangler's exit code.
	signal.Ignore(os.Interrupt, syscall.SIGTERM)
	defer signal.Reset(os.Interrupt, syscall.SIGTERM)
	cmd, err := wrangler.Command(".", wargs...)
	if err != nil {
		return fail("%v", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	cmd.Env = append(cmd.Env, "WRANGLER_SEND_METRICS=false")
	if err := cmd.Start(); err != nil {
		return fail("%v", err)
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	if w != nil {
		go w.run(watchCtx, func(changed []string) { rebuild(watchCtx, pkg, *out, changed, stdout, stderr) })
	}
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		return fail("%v", err)
	}
	return 0
}

// rebuild is dev's answer to a change: build, and write the module only if
// it built and loads, so wrangler keeps serving the last good one.
func rebuild(ctx context.Context, pkg, out string, changed []string, stdout, stderr io.Writer) {
	began := time.Now()
	what := strings.Join(changed, ", ")
	if len(changed) > 3 {
		what = fmt.Sprintf("%s and %d more", strings.Join(changed[:3], ", "), len(changed)-3)
	}
	fmt.Fprintf(stdout, "damper dev: %s changed; rebuilding\n", what)
	mod, err := compileModule(ctx, pkg)
	if err == nil {
		err = mod.write(out)
	}
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(stderr, "damper dev: the rebuild failed; wrangler keeps the previous module:\n%v\n", err)
		}
		return
	}
	fmt.Fprintf(stdout, "damper dev: rebuilt %s in %s (agents: %s); wrangler reloads it\n",
		out, time.Since(began).Round(time.Millisecond), strings.Join(mod.agents(), ", "))
}

// devArgs are wrangler dev's arguments: the user's, after the dev var and
// a loopback address. A user who passes --ip keeps it, and gets no dev var
// unless it is a loopback address: other clients need a token.
func devArgs(user []string) []string {
	args := []string{"dev"}
	ip, given := flagValue(user, "ip")
	if !given {
		args = append(args, "--ip", "127.0.0.1")
	}
	if !given || loopback(net.JoinHostPort(ip, "0")) {
		args = append(args, "--var", devVar)
	}
	return append(args, user...)
}

// flagValue finds --name value or --name=value in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1], true
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

var tomlMain = regexp.MustCompile(`(?m)^\s*main\s*=\s*"([^"]*)"`)

// checkMain makes sure wrangler.toml's main is the Worker damper wrote
// beside out, the mistake an older project layout would make.
func checkMain(out string) error {
	b, err := os.ReadFile("wrangler.toml")
	if err != nil {
		return err
	}
	want := filepath.ToSlash(filepath.Join(filepath.Dir(out), worker.Dir, worker.Entry))
	m := tomlMain.FindSubmatch(b)
	if m == nil {
		return fmt.Errorf("wrangler.toml has no main: add main = %q, the Worker damper writes beside the module", want)
	}
	if filepath.Clean(string(m[1])) != filepath.Clean(want) {
		return fmt.Errorf("wrangler.toml's main is %q, but damper writes the Worker to %s: set main = %q", m[1], want, want)
	}
	return nil
}

// ensureWrangler installs the project's pinned wrangler, and the Node.js
// it runs on, with `npm ci` the first time, and again whenever
// package-lock.json pins something else than node_modules holds (after a
// pull that bumps wrangler), saying so.
func ensureWrangler(name string, stdout, stderr io.Writer) error {
	stale := wrangler.Stale(".")
	if stale == "" {
		return nil
	}
	if _, err := os.Stat("package.json"); err != nil {
		return errors.New("no package.json here: wrangler comes from the project's package.json; " +
			"add it with `npm install --save-dev --save-exact wrangler@" + scaffold.WranglerVersion + "` (damper init writes both files)")
	}
	if _, err := os.Stat("package-lock.json"); err != nil {
		return errors.New("no package-lock.json here: run `npm install` once to pin wrangler, and commit package-lock.json")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return errors.New("npm is not installed: it installs wrangler and the Node.js that runs it; install npm (with any Node.js), then run this again")
	}
	if _, err := os.Stat("node_modules"); err != nil {
		fmt.Fprintf(stderr, "damper %s: installing wrangler from package-lock.json into node_modules/ (npm ci; once per checkout)\n", name)
	} else {
		fmt.Fprintf(stderr, "damper %s: %s; reinstalling node_modules/ (npm ci)\n", name, stale)
	}
	npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	npm.Stdout, npm.Stderr = stdout, stderr
	if err := npm.Run(); err != nil {
		return fmt.Errorf("npm ci failed (its output is above): %v; check your access to the npm registry, then run this again", err)
	}
	if stale := wrangler.Stale("."); stale != "" {
		return fmt.Errorf("after npm ci, %s: is wrangler in package.json's devDependencies?", stale)
	}
	return nil
}

// secretHints says, before wrangler starts, which secrets the Worker will
// miss and where to put them: .dev.vars for dev, `wrangler secret put`
// for a deployed Worker.
func secretHints(stderr io.Writer, name string, mod *module) {
	if name == "dev" {
		vars := devVars(".dev.vars")
		warnMissingSecrets(stderr, name, mod.manifest, func(n string) bool { return vars[n] }, func(n string) string {
			return "put " + n + "=... in .dev.vars (git-ignored)"
		})
		return
	}
	names, _ := policySecrets(mod.manifest)
	names = append([]string{"DAMPER_TOKEN"}, names...)
	fmt.Fprintf(stderr, "damper deploy: the Worker reads these secrets; set each once per account with `npx wrangler secret put NAME`: %s\n",
		strings.Join(names, ", "))
}

// devVars returns the names set in a .dev.vars file (dotenv: NAME=value
// lines, # comments).
func devVars(path string) map[string]bool {
	names := map[string]bool{}
	b, err := os.ReadFile(path)
	if err != nil {
		return names
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "export "))
		if name, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			names[strings.TrimSpace(name)] = true
		}
	}
	return names
}
