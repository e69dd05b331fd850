package main

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/damperdev/damper/internal/wire"
)

// cliVersion is damper's module version: the one `go install …@VERSION`
// or a project's go.mod chose, or "(devel)" for a build from a work tree,
// with its commit when the build recorded one.
func cliVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if r := bi.Main.Replace; r != nil {
		// `go tool damper` in a project whose go.mod replaces damper.
		if r.Version != "" && r.Version != "(devel)" {
			return r.Version
		}
		return "(devel, from " + r.Path + ")"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev == "" {
		return "(devel)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "(devel " + rev + modified + ")"
}

// replacedBy is the directory that damper's own module was replaced with
// when this binary was built (`go tool damper` in a project made with
// --replace-damper), or "" when it was not, or not by an absolute path.
func replacedBy() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Replace == nil || bi.Main.Replace.Version != "" && bi.Main.Replace.Version != "(devel)" || !filepath.IsAbs(bi.Main.Replace.Path) {
		return ""
	}
	return bi.Main.Replace.Path
}

func versionCmd(stdout io.Writer) int {
	fmt.Fprintf(stdout, "damper %s, module ABI version %d, %s %s/%s\n", cliVersion(), wire.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
