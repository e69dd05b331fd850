package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
	"github.com/damperdev/damper/internal/wire"
)

// The mistakes a newcomer makes first, each with its exit code and a
// message that says what to do.
func TestBuildErrorsSayWhatToDo(t *testing.T) {
	examples, err := exec.Command("go", "list", "../../examples/...").Output()
	require.NoError(t, err)
	several := fmt.Sprintf("../../examples/... names %d packages; damper build takes one main package", bytes.Count(examples, []byte("\n")))
	for _, tc := range []struct {
		name string
		pkg  string
		want []string
	}{
		{"not a main package", "./testdata/notmain", []string{
			"github.com/damperdev/damper/cmd/damper/testdata/notmain is package notmain, not a main package",
			`import _ "github.com/damperdev/damper/cmd/damper/testdata/notmain"`,
		}},
		{"a main that does not import the runtime", "./testdata/noruntime", []string{
			"./testdata/noruntime is a main package that does not import the damper runtime",
			"github.com/damperdev/damper/runtime/agent",
		}},
		{"a main that registers no agent", "./testdata/noagents", []string{
			"./testdata/noagents registers no agent: call agent.Register",
		}},
		{"a panic in init shows the panic and the Go stack", "./testdata/initpanic", []string{
			"the module failed while initializing (in a package init function)",
			`panic: policy: service "api": bad rule (a test fixture)`,
			"goroutine 1 [running]:",
			"main.init.0()",
			"github.com/damperdev/damper/cmd/damper/testdata/initpanic/main.go:",
		}},
		{"os.Exit in init", "./testdata/initexit", []string{
			"the module exited with code 3 while initializing (os.Exit in a package init function)",
			"initexit: giving up (a test fixture)",
		}},
		{"no such package", "./testdata/nowhere", []string{"damper build: go build ./testdata/nowhere failed"}},
		{"several packages", "../../examples/...", []string{several}},
		{"no package", "./testdata/...", []string{"./testdata/... matches no package"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "build", "damper.wasm")
			code, stdout, stderr := damper(t, "", "build", "-o", out, tc.pkg)
			assert.Equal(t, 1, code, "stdout %q", stdout)
			assert.True(t, strings.HasPrefix(stderr, "damper build: "), stderr)
			for _, w := range tc.want {
				assert.Contains(t, stderr, w)
			}
			assert.NotContains(t, stderr, "wasm stack trace", "the Go stack, not wazero's")
			assert.NoFileExists(t, out, "a module that fails its checks is not written")
		})
	}
}

func TestBuildWritesTheWorker(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out", "agents.wasm")
	code, stdout, stderr := damper(t, "", "build", "-o", out, "../../tests/module")
	require.Equal(t, 0, code, stderr)
	dir := filepath.Dir(out)
	assert.Contains(t, stdout, filepath.Join(dir, "worker", "index.js"))
	index, err := os.ReadFile(filepath.Join(dir, "worker", "index.js"))
	require.NoError(t, err)
	assert.Contains(t, string(index), `import wasm from "../agents.wasm";`, "the Worker imports the module by its name")
	assert.Contains(t, string(index), `import manifest from "../manifest.json";`)
	for _, f := range []string{"module.js", "wasi.js", "runner.js", "effects.js"} {
		assert.FileExists(t, filepath.Join(dir, "worker", f))
	}
}

func TestUnknownAgentListsTheAgents(t *testing.T) {
	code, out, _ := damper(t, "", "run", "--module", testmodule.Path(t), "--data", t.TempDir(), "helo", "{}")
	assert.Equal(t, 2, code, "bad input")
	var v struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	assert.Equal(t, "not_found", v.Error.Type)
	assert.Regexp(t, `^no agent named "helo"; this module's agents: hello, probe\.[a-z]+, .*repo, shell, triage$`, v.Error.Message)
}

func TestRunTakesFlagsAfterItsArguments(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := damper(t, "", "run", "hello", `{"name":"Ada"}`, "--id", "me", "--module", testmodule.Path(t), "--data", data)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"greeting": "Hello, Ada!"`)
	assert.FileExists(t, filepath.Join(data, "hello", "me.sqlite"), "--id after the payload named the instance")

	// After "--", a payload may start with '-'.
	code, out, _ = damper(t, "", "run", "--module", testmodule.Path(t), "--data", data, "hello", "--", "-1")
	assert.Equal(t, 2, code, "bad input")
	assert.Contains(t, out, `"invalid_payload"`, "-1 reached the agent as its payload")
}

func TestRunVerboseShowsEachEventOnce(t *testing.T) {
	code, _, errOut := damper(t, "", "run", "-v", "--module", testmodule.Path(t), "--data", t.TempDir(), "probe.triage", `{"turns":2}`)
	require.Equal(t, 0, code, errOut)
	for n := range 2 {
		assert.Equal(t, 1, strings.Count(errOut, fmt.Sprintf("▸ bash {\"command\":\"grep -rn bug%d .\"}", n+1)), "tool call %d in:\n%s", n+1, errOut)
	}
	assert.NotContains(t, errOut, "msg=event", "no second copy in the debug log")
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out, _ := damper(t, "", arg)
		assert.Equal(t, 0, code)
		assert.Regexp(t, `^damper \S.*, module ABI version `+regexp.QuoteMeta(string(rune('0'+wire.Version)))+`, go1\.\d+\S* \w+/\w+\n$`, out)
	}
}

// syncBuffer is a bytes.Buffer for a writer and a reader on two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeLogsEveryRequest(t *testing.T) {
	t.Setenv("DAMPER_TOKEN", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOptions{addr: "127.0.0.1:0", module: testmodule.Path(t), data: t.TempDir(), idle: time.Minute}, &logs)
	}()
	listening := regexp.MustCompile(`listening on (http://\S+)`)
	var base string
	require.Eventually(t, func() bool {
		m := listening.FindStringSubmatch(logs.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	}, 2*time.Minute, 20*time.Millisecond, "serve printed no address:\n%s", logs.String())

	var ids []string
	for _, r := range []struct{ method, path string }{{"GET", "/health"}, {"POST", "/agents/hello/log"}, {"POST", "/agents/nope/log"}, {"GET", "/agents/hello/log"}} {
		req, err := http.NewRequest(r.method, base+r.path, strings.NewReader(`{}`))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		ids = append(ids, resp.Header.Get("X-Request-Id"))
	}
	cancel()
	require.NoError(t, <-done)

	var lines []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=request ") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 4, logs.String())
	for i, want := range []string{
		"method=GET path=/health status=200 duration=",
		"method=POST path=/agents/hello/log status=200 duration=",
		"method=POST path=/agents/nope/log status=404 duration=",
		"method=GET path=/agents/hello/log status=405 duration=",
	} {
		assert.Contains(t, lines[i], want)
		require.NotEmpty(t, ids[i])
		assert.Contains(t, lines[i], "request_id="+ids[i], "the id the client got")
	}
}

func TestDevAndDeployOutsideAProject(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, cmd := range []string{"dev", "deploy"} {
		code, _, errOut := damper(t, "", cmd)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "damper "+cmd+": no wrangler.toml in ")
		assert.Contains(t, errOut, "damper init DIR")
	}

	// A wrangler.toml whose main is not the Worker damper writes.
	require.NoError(t, os.WriteFile("wrangler.toml", []byte("name = \"x\"\nmain = \"worker/index.js\"\n"), 0o644))
	require.NoError(t, os.MkdirAll("build", 0o755))
	require.NoError(t, os.WriteFile("build/damper.wasm", []byte("\x00asm"), 0o644))
	code, _, errOut := damper(t, "", "dev", "--no-build")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `wrangler.toml's main is "worker/index.js", but damper writes the Worker to build/worker/index.js: set main = "build/worker/index.js"`)

	// No package.json to install wrangler from.
	require.NoError(t, os.WriteFile("wrangler.toml", []byte("name = \"x\"\nmain = \"build/worker/index.js\"\n"), 0o644))
	code, _, errOut = damper(t, "", "deploy", "--no-build")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "damper deploy: no package.json here: wrangler comes from the project's package.json")
	assert.FileExists(t, "build/worker/index.js", "--no-build still writes this damper's Worker")
}

func TestDevArgs(t *testing.T) {
	for _, tc := range []struct {
		user, want []string
	}{
		{nil, []string{"dev", "--ip", "127.0.0.1", "--var", "DAMPER_DEV:1"}},
		{[]string{"--port", "9000"}, []string{"dev", "--ip", "127.0.0.1", "--var", "DAMPER_DEV:1", "--port", "9000"}},
		{[]string{"--ip", "localhost"}, []string{"dev", "--var", "DAMPER_DEV:1", "--ip", "localhost"}},
		{[]string{"--ip=::1"}, []string{"dev", "--var", "DAMPER_DEV:1", "--ip=::1"}},
		// Another address: no dev var, so every client needs the token.
		{[]string{"--ip", "0.0.0.0"}, []string{"dev", "--ip", "0.0.0.0"}},
		{[]string{"--ip=192.0.2.1"}, []string{"dev", "--ip=192.0.2.1"}},
		{[]string{"-ip", "::"}, []string{"dev", "-ip", "::"}},
	} {
		assert.Equal(t, tc.want, devArgs(tc.user), "%q", tc.user)
	}
}

func TestDevVars(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".dev.vars")
	require.NoError(t, os.WriteFile(path, []byte("# secrets\nGITHUB_TOKEN=fake-token\n export OTHER = 'x y'\n#NOT_SET=1\n\nbroken line\n"), 0o600))
	assert.Equal(t, map[string]bool{"GITHUB_TOKEN": true, "OTHER": true}, devVars(path))
	assert.Empty(t, devVars(filepath.Join(t.TempDir(), "missing")))
}

func TestMissingSecretsSayWhereToPutThem(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "")
	t.Setenv("PROBE_API_TOKEN", "fake-probe-token")
	code, _, errOut := damper(t, "", "run", "--module", testmodule.Path(t), "--data", t.TempDir(), "hello")
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, errOut, "GITHUB_TOKEN", "a secret of an agent that does not run is not this run's concern")

	// The run's agent needs it: said before the run, which then fails for it.
	_, _, errOut = damper(t, "", "run", "--module", testmodule.Path(t), "--data", t.TempDir(), "repo", `{"owner":"o","repo":"r"}`)
	assert.Contains(t, errOut, "damper run: secret GITHUB_TOKEN is not set, so the requests of agent repo that need it fail: set it in the environment, e.g. GITHUB_TOKEN=... damper run")
	assert.NotContains(t, errOut, "secret PROBE_API_TOKEN is not set")
	assert.NotContains(t, errOut, "fake-probe-token")
}

func TestInit(t *testing.T) {
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "My Agents")

	code, _, errOut := damper(t, "", "init", dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "damper init: this damper was built from source (version (devel)")
	assert.Contains(t, errOut, "--replace-damper=DIR")
	assert.NoDirExists(t, dir, "nothing written")

	code, out, errOut := damper(t, "", "init", dir, "--module", "example.com/my/agents", "--replace-damper", root)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "damper init: wrote "+dir+": module example.com/my/agents, damper from "+root)
	assert.Contains(t, out, "  cd "+dir+"\n")
	for _, f := range []string{".gitignore", "README.md", "go.mod", "go.sum", "main.go", "hello/hello.go", "hello/hello_test.go", "wrangler.toml", "package.json", "package-lock.json"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	assert.Contains(t, string(gomod), "module example.com/my/agents\n")
	assert.Contains(t, string(gomod), "\ntool github.com/damperdev/damper/cmd/damper\n")
	assert.Contains(t, string(gomod), "\nreplace github.com/damperdev/damper => "+root+"\n")
	toml, err := os.ReadFile(filepath.Join(dir, "wrangler.toml"))
	require.NoError(t, err)
	assert.Contains(t, string(toml), "\nname = \"my-agents\"\n", "a Worker name from the directory's")
	assert.Contains(t, string(toml), "\nmain = \"build/worker/index.js\"\n")
	_, err = os.Stat(filepath.Join(dir, "worker"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no copy of damper's Worker in the project")

	// Not again, unless told.
	code, _, errOut = damper(t, "", "init", dir, "--replace-damper", root)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "is not empty (.gitignore, README.md, go.mod, go.sum, hello, …): run it on a new or empty directory, or pass --force")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello", "hello.go"), []byte("package hello // edited\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	code, _, errOut = damper(t, "", "init", dir, "--force", "--module", "example.com/my/agents", "--replace-damper", root)
	require.Equal(t, 0, code, errOut)
	hello, err := os.ReadFile(filepath.Join(dir, "hello", "hello.go"))
	require.NoError(t, err)
	assert.Contains(t, string(hello), `agent.Register("hello", greet)`, "--force rewrote the project's files")
	assert.FileExists(t, filepath.Join(dir, "notes.txt"), "and left the others alone")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"init", filepath.Join(t.TempDir(), "x"), "--module", "not a path", "--replace-damper", root}, "damper init: module path: "},
		{[]string{"init", filepath.Join(t.TempDir(), "x"), "--replace-damper", t.TempDir()}, "damper init: --replace-damper: "},
		{[]string{"init", filepath.Join(t.TempDir(), "x"), "--replace-damper", filepath.Join(root, "examples")}, "is not a damper checkout"},
	} {
		code, _, errOut := damper(t, "", tc.args...)
		assert.Equal(t, 1, code, "%q", tc.args)
		assert.Contains(t, errOut, tc.want, "%q", tc.args)
	}
}

// TestDeployReinstallsAStaleWranglerAndChecksNode: a node_modules that holds
// another wrangler than package-lock.json pins (a pull bumped it) is
// reinstalled with npm ci, saying why; a Node.js too old for the pinned
// wrangler is refused, naming both versions; a recent one runs wrangler's
// own entry. npm and node are stand-ins in PATH (shell scripts): this test
// is about what damper decides, the e2e suite runs the real ones.
func TestDeployReinstallsAStaleWranglerAndChecksNode(t *testing.T) {
	dir, bin := t.TempDir(), t.TempDir()
	t.Chdir(dir)
	files := map[string]string{
		"wrangler.toml":     "name = \"x\"\nmain = \"build/worker/index.js\"\n",
		"build/damper.wasm": "\x00asm",
		"package.json":      `{"devDependencies": {"wrangler": "4.164.0"}}`,
		"package-lock.json": `{"lockfileVersion": 3, "packages": {"": {}, "node_modules/wrangler": {"version": "4.164.0"}}}`,
		// What an install of the previous pin left.
		"node_modules/.package-lock.json":    `{"lockfileVersion": 3, "packages": {"node_modules/wrangler": {"version": "4.86.0"}}}`,
		"node_modules/wrangler/package.json": `{"version": "4.86.0", "engines": {"node": ">=20.0.0"}}`,
	}
	for name, text := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o755))
		require.NoError(t, os.WriteFile(name, []byte(text), 0o644))
	}
	script := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755))
	}
	// npm ci installs what the lock pins: wrangler 4.164.0, which needs Node.js 22.12.
	script("npm", `echo "npm $*" >> npm.log
mkdir -p node_modules/wrangler
echo '{"lockfileVersion": 3, "packages": {"node_modules/wrangler": {"version": "4.164.0"}}}' > node_modules/.package-lock.json
echo '{"version": "4.164.0", "engines": {"node": ">=22.12.0"}}' > node_modules/wrangler/package.json
`)
	node := func(version string) {
		script("node", `if [ "$1" = --version ]; then echo `+version+`; exit 0; fi
echo "node $*"; echo "PATH=$PATH"
`)
	}
	t.Setenv("PATH", bin+":/usr/bin:/bin")

	node("v20.20.2")
	code, _, errOut := damper(t, "", "deploy", "--no-build")
	assert.Equal(t, 1, code, errOut)
	assert.Contains(t, errOut, "damper deploy: node_modules/ holds wrangler 4.86.0, package-lock.json pins 4.164.0; reinstalling node_modules/ (npm ci)\n")
	npmLog, err := os.ReadFile("npm.log")
	require.NoError(t, err)
	assert.Equal(t, "npm ci --no-audit --no-fund\n", string(npmLog))
	assert.Contains(t, errOut, "damper deploy: wrangler 4.164.0 needs Node.js >= 22.12.0, and "+filepath.Join(bin, "node")+" is v20.20.2: put a Node.js >= 22.12.0 first in PATH, or, ")

	node("v24.22.3")
	code, out, errOut := damper(t, "", "deploy", "--no-build", "--", "--dry-run")
	assert.Equal(t, 0, code, errOut)
	assert.NotContains(t, errOut, "npm ci", "installed as the lock pins: no second npm ci")
	assert.Contains(t, out, "node "+filepath.Join(dir, "node_modules", "wrangler", "bin", "wrangler.js")+" deploy --dry-run\n")
	assert.Contains(t, out, "PATH="+filepath.Join(dir, "node_modules", ".bin")+":"+bin+":")
}
