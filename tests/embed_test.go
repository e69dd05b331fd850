package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
)

// A Go program outside this module embeds the local host with its public
// API alone (no internal/ type in sight): it runs the hello agent of a
// built module and prints the result.
func TestEmbedTheLocalHost(t *testing.T) {
	a := build(t)
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	dir := t.TempDir()
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	write("go.mod", "module example.com/embed\n\ngo 1.26\n\nrequire github.com/damperdev/damper v0.0.0\n\nreplace github.com/damperdev/damper => "+root+"\n")
	write("main.go", `package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/damperdev/damper/local"
)

func main() {
	ctx := context.Background()
	wasm, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	h, err := local.New(ctx, wasm, local.NewConfig().WithDataDir(os.Args[2]))
	if err != nil {
		panic(err)
	}
	defer h.Close(ctx)
	res, err := h.Run(ctx, "hello", "embedded", json.RawMessage(`+"`"+`{"name":"embedder"}`+"`"+`))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %d agents\n", res.Result, len(h.Manifest().Agents))
	_, err = h.Run(ctx, "nope", "x", nil)
	var he *local.Error
	if !errors.As(err, &he) {
		panic(err)
	}
	fmt.Println(he.Type, he.Status)
}
`)
	tidy := exec.Command("go", "mod", "tidy")
	tidy.Dir = dir
	out, err := tidy.CombinedOutput()
	require.NoError(t, err, "%s", out)
	run := exec.Command("go", "run", ".", a.module, t.TempDir())
	run.Dir = dir
	out, err = run.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), `"greeting":"Hello, embedder!"`)
	assert.Contains(t, string(out), "not_found 404")
}
