//go:build !wasip1

package empty

// The scripts compared with bash use jq too.
import _ "github.com/damperdev/damper/sandbox/empty/jq"
