package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/BurntSushi/toml"

	"github.com/damperdev/damper/build/container"
)

// imageDir is where a project's container image is built from: the
// [[containers]] image that `damper init` and damper's own wrangler.toml
// name, "./build/container/Dockerfile".
const imageDir = "build/container"

// prepareImage readies the container kind's image for wrangler when the
// project's wrangler.toml declares [[containers]] built from
// build/container/Dockerfile: it writes the Dockerfile and entrypoint this
// damper carries, and, when withSandboxd, the Linux sandboxd they copy,
// built from the project's own damper dependency (so the image holds
// exactly the sandboxd the local host runs). An image from elsewhere (a
// Dockerfile of the project's own, a registry) is left to wrangler.
func prepareImage(ctx context.Context, name string, withSandboxd func(devContainers bool) bool, stdout io.Writer) error {
	var cfg struct {
		Containers []struct {
			Image string `toml:"image"`
		} `toml:"containers"`
		Dev struct {
			EnableContainers *bool `toml:"enable_containers"`
		} `toml:"dev"`
	}
	if _, err := toml.DecodeFile("wrangler.toml", &cfg); err != nil {
		return fmt.Errorf("wrangler.toml: %w", err)
	}
	ours := false
	for _, c := range cfg.Containers {
		if filepath.Clean(c.Image) == filepath.Join(imageDir, "Dockerfile") {
			ours = true
		}
	}
	if !ours {
		return nil
	}
	if err := os.MkdirAll(imageDir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"Dockerfile", 0o644}, {"entrypoint.sh", 0o755}} {
		b, err := fs.ReadFile(container.Files, f.name)
		if err != nil {
			return err
		}
		path := filepath.Join(imageDir, f.name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
			continue
		}
		if err := os.WriteFile(path, b, f.mode); err != nil {
			return fmt.Errorf("write the container image's %s: %w", f.name, err)
		}
	}
	if !withSandboxd(cfg.Dev.EnableContainers == nil || *cfg.Dev.EnableContainers) {
		return nil
	}
	// Cloudflare Containers run linux/amd64.
	fmt.Fprintf(stdout, "damper %s: building sandboxd (linux/amd64) into %s/ for the container image\n", name, imageDir)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(imageDir, "sandboxd"), "github.com/damperdev/damper/cmd/sandboxd")
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the container's sandboxd: %v\n%s", err, out)
	}
	return nil
}
