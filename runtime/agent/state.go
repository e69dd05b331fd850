package agent

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/damperdev/damper/runtime/internal/store"
)

// State is the durable key/value state of an agent instance: what one run
// sets, the instance's later runs get, on either host and across module
// restarts. Values are stored as JSON. Each call is one round trip to the
// instance's database and commits on its own.
type State struct {
	c *Context
}

// State returns the state of this run's agent instance.
func (c *Context) State() *State { return &State{c: c} }

// Get decodes the value stored under key into v, which must be a pointer,
// and reports whether there was one; v is untouched when there was not.
func (s *State) Get(key string, v any) (found bool, err error) {
	if key == "" {
		return false, errors.New("state: get: empty key")
	}
	raw, found, err := store.Get(s.c.task, key)
	if err != nil {
		return false, fmt.Errorf("state: get %q: %w", key, err)
	}
	if !found {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("state: get %q: decode: %w", key, err)
	}
	return true, nil
}

// Set stores v, encoded as JSON, under key.
func (s *State) Set(key string, v any) error {
	if key == "" {
		return errors.New("state: set: empty key")
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state: set %q: encode: %w", key, err)
	}
	if err := store.Set(s.c.task, key, raw); err != nil {
		return fmt.Errorf("state: set %q: %w", key, err)
	}
	return nil
}

// Delete removes key. Removing a key that is not there is not an error.
func (s *State) Delete(key string) error {
	if key == "" {
		return errors.New("state: delete: empty key")
	}
	if err := store.Delete(s.c.task, key); err != nil {
		return fmt.Errorf("state: delete %q: %w", key, err)
	}
	return nil
}
