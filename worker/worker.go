// Package worker is damper's Cloudflare Workers host: the Worker entry
// (index.js), its Durable Object, the WASI shim and the effects, in
// JavaScript. The damper CLI embeds these files and writes them beside the
// module it builds (build/worker/), where wrangler.toml's main points, so a
// project holds no copy of them and always runs the Worker of the damper
// that built its module.
package worker

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The Worker's modules; the *.test.mjs files are damper's own tests.
//
//go:embed *.js
var files embed.FS

// Dir is the directory, beside the module, that Write fills.
const Dir = "worker"

// Entry is the Worker's entry module, the file wrangler.toml's main names.
const Entry = "index.js"

// moduleImport is how index.js imports the module: from the directory above
// its own, where damper build writes damper.wasm and manifest.json.
const moduleImport = `from "../damper.wasm";`

// Write writes the Worker into dir/worker/, importing the module file
// named module (a file name in dir, such as "damper.wasm") and dir's
// manifest.json. A file whose bytes are already there is not written
// again, so that `wrangler dev`, which reloads when a file it bundles
// changes, reloads only for what changed; a .js file of an older damper
// that this one no longer has is removed.
func Write(dir, module string) error {
	if module == "" || strings.ContainsAny(module, `/\"`) {
		return fmt.Errorf("worker: module %q is not a plain file name", module)
	}
	out := filepath.Join(dir, Dir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	want := map[string]bool{}
	for _, e := range entries {
		b, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		if e.Name() == Entry && module != "damper.wasm" {
			b = bytes.Replace(b, []byte(moduleImport), []byte("from "+strconv.Quote("../"+module)+";"), 1)
		}
		want[e.Name()] = true
		if err := writeIfChanged(filepath.Join(out, e.Name()), b); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
	}
	have, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	for _, e := range have {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".js") && !want[e.Name()] {
			if err := os.Remove(filepath.Join(out, e.Name())); err != nil {
				return fmt.Errorf("worker: %w", err)
			}
		}
	}
	return nil
}

// writeIfChanged writes b to path unless path already holds exactly b. The
// bytes go to a temporary file renamed into place, so a reader (wrangler's
// watcher) never sees half a file.
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
