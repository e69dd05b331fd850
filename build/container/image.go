// Package container is the container kind's image as the damper CLI
// carries it: the Dockerfile and entrypoint that `damper dev` and `damper
// deploy` write into a project's build/container/, beside the Linux
// sandboxd they build, when its wrangler.toml declares [[containers]].
// Agent code does not import it.
package container

import "embed"

// Files holds Dockerfile and entrypoint.sh.
//
//go:embed Dockerfile entrypoint.sh
var Files embed.FS
