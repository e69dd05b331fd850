//go:build !linux

package ossandbox

import "errors"

func becomeSubreaper() error {
	return errors.New("a subreaper is Linux's (prctl PR_SET_CHILD_SUBREAPER)")
}

func (s *Sandbox) killStrays() {}
