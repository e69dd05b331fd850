package model

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// RetryPolicy is how a model from Open retries a turn that failed with a
// transient error (Error.Retryable): after a wait, the whole turn again.
// The wait is the error's RetryAfter when the provider gave one, and an
// exponential backoff otherwise: Base, 2×Base, 4×Base, ... capped at
// MaxDelay, each lengthened by a random jitter of up to a quarter. When
// the next wait would take the turn's waits past MaxWait, the turn fails
// with the error instead. Zero fields take DefaultRetryPolicy's values.
type RetryPolicy struct {
	// MaxRetries is how many times a turn is sent again after its first
	// attempt; negative for never.
	MaxRetries int
	// Base is the first backoff.
	Base time.Duration
	// MaxDelay caps one backoff (not a provider's RetryAfter).
	MaxDelay time.Duration
	// MaxWait caps the sum of one turn's waits.
	MaxWait time.Duration
}

// DefaultRetryPolicy is 3 retries from a 2 s base, waits of at most 30 s
// each and 2 minutes in all.
var DefaultRetryPolicy = RetryPolicy{MaxRetries: 3, Base: 2 * time.Second, MaxDelay: 30 * time.Second, MaxWait: 2 * time.Minute}

func (p RetryPolicy) normalized() RetryPolicy {
	d := DefaultRetryPolicy
	if p.MaxRetries == 0 {
		p.MaxRetries = d.MaxRetries
	}
	if p.Base <= 0 {
		p.Base = d.Base
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.MaxWait <= 0 {
		p.MaxWait = d.MaxWait
	}
	return p
}

// backoff is the wait before retry number n (1 for the first retry) after
// err.
func (p RetryPolicy) backoff(n int, err *Error) time.Duration {
	if err.RetryAfter > 0 {
		return err.RetryAfter
	}
	d := p.Base
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	// Whole milliseconds: what the host's sleep counts in.
	return (d + rand.N(d/4+1)).Truncate(time.Millisecond)
}

// retrying is a Model from Open: the provider's model, retried.
type retrying struct {
	m      Model
	env    Env
	policy RetryPolicy
}

func (r *retrying) Turn(ctx context.Context, req *Request, onDelta func(Delta)) (*Response, error) {
	var waited time.Duration
	for attempt := 1; ; attempt++ {
		resp, err := r.m.Turn(ctx, req, onDelta)
		if err == nil {
			return resp, nil
		}
		var me *Error
		if !errors.As(err, &me) || !me.Retryable() || attempt > r.policy.MaxRetries {
			return nil, err
		}
		wait := r.policy.backoff(attempt, me)
		if waited+wait > r.policy.MaxWait {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, canceled(me.Provider, ctx.Err())
		}
		if onDelta != nil {
			onDelta(Delta{Type: DeltaRetry, Attempt: attempt + 1, Wait: wait, Err: err})
		}
		if serr := r.env.Sleep(wait); serr != nil {
			return nil, canceled(me.Provider, serr)
		}
		waited += wait
	}
}

func canceled(provider string, err error) *Error {
	return &Error{Kind: KindCanceled, Provider: provider, Message: "the run was canceled", Err: err}
}
