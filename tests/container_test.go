package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/damperdev/damper/internal/testmodule"
)

// TestContainerConfig checks what `wrangler deploy --dry-run` cannot
// without a Docker daemon (it builds a Dockerfile image even for a dry
// run, so tests/wranglerdev runs it without the [[containers]] entry):
// the container's entry in wrangler.toml, its Durable Object binding and
// migration, the Worker's exports, and the image it names.
func TestContainerConfig(t *testing.T) {
	root, err := testmodule.RepoRoot()
	require.NoError(t, err)
	var cfg struct {
		Containers []struct {
			ClassName    string `toml:"class_name"`
			Image        string `toml:"image"`
			MaxInstances int    `toml:"max_instances"`
		} `toml:"containers"`
		DurableObjects struct {
			Bindings []struct {
				Name      string `toml:"name"`
				ClassName string `toml:"class_name"`
			} `toml:"bindings"`
		} `toml:"durable_objects"`
		Migrations []struct {
			Tag              string   `toml:"tag"`
			NewSqliteClasses []string `toml:"new_sqlite_classes"`
		} `toml:"migrations"`
		Dev struct {
			EnableContainers *bool `toml:"enable_containers"`
		} `toml:"dev"`
	}
	_, err = toml.DecodeFile(filepath.Join(root, "wrangler.toml"), &cfg)
	require.NoError(t, err)

	require.Len(t, cfg.Containers, 1)
	c := cfg.Containers[0]
	assert.Equal(t, "Sandbox", c.ClassName)
	assert.Positive(t, c.MaxInstances)
	dockerfile := filepath.Join(root, c.Image)
	require.FileExists(t, dockerfile, "the image is built from a Dockerfile of the repository")

	var bound bool
	for _, b := range cfg.DurableObjects.Bindings {
		if b.Name == "SANDBOX" {
			bound = true
			assert.Equal(t, c.ClassName, b.ClassName, "the Worker reaches the container class through env.SANDBOX")
		}
	}
	assert.True(t, bound, "a SANDBOX Durable Object binding")
	var migrated bool
	for _, m := range cfg.Migrations {
		migrated = migrated || slices.Contains(m.NewSqliteClasses, c.ClassName)
	}
	assert.True(t, migrated, "a migration creates the container class")
	require.NotNil(t, cfg.Dev.EnableContainers)
	assert.False(t, *cfg.Dev.EnableContainers, "wrangler dev runs without Docker")

	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		require.NoError(t, err)
		return string(b)
	}
	index, class := read("worker/index.js"), read("worker/container.js")
	assert.Contains(t, index, `export { Sandbox } from "./container.js";`)
	assert.Contains(t, index, `export { ContainerProxy } from "@cloudflare/containers";`, "outbound interception calls ctx.exports.ContainerProxy")
	assert.Regexp(t, `export class Sandbox extends Container`, class)
	assert.Regexp(t, `enableInternet = false;`, class)
	assert.Regexp(t, `interceptHttps = true;`, class)
	assert.Regexp(t, `static outbound = `, class)
	port := regexp.MustCompile(`defaultPort = (\d+);`).FindStringSubmatch(class)
	require.Len(t, port, 2)

	df, entry := read(c.Image), read(filepath.Join(filepath.Dir(c.Image), "entrypoint.sh"))
	assert.Contains(t, df, "EXPOSE "+port[1], "the image serves the port the class reaches")
	assert.Contains(t, df, "COPY sandboxd /usr/local/bin/sandboxd")
	assert.Contains(t, df, "/etc/cloudflare/certs/cloudflare-containers-ca.crt", "the image trusts Cloudflare's interception CA")
	assert.Contains(t, entry, "update-ca-certificates")
	assert.Contains(t, entry, "--listen :"+port[1])
	assert.Regexp(t, `--user \d+`, entry, "sandboxd gives up root once it listens")
}
