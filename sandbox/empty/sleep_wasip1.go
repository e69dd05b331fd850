//go:build wasip1

package empty

import (
	"errors"
	"time"
)

// sleepOutsideRun refuses: in a module only the host may wait (a Go timer
// would stall the module instance), and only a run can ask it to.
func sleepOutsideRun(time.Duration) error {
	return errors.New("sleep: only a run's sandbox can wait")
}
