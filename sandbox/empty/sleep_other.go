//go:build !wasip1

package empty

import "time"

// sleepOutsideRun waits for the shell's sleep in a sandbox that is not a
// run's (tests): natively a timer is fine.
func sleepOutsideRun(d time.Duration) error {
	time.Sleep(d)
	return nil
}
