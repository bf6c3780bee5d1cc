package pve

import (
	"context"
	"time"
)

// pollGrowth is how fast the interval between polls grows. 1.5 rather than 2
// keeps the overshoot past a task's end to about a third of its run time
// while it is short, and the cap bounds it for long tasks.
const pollGrowth = 1.5

// poller spaces out the polls of a task, a guest's status or a lock: quick at
// first, backing off to the client's maximum.
type poller struct {
	delay, max time.Duration
}

func (c *Client) newPoller() *poller { return &poller{delay: c.pollMin, max: c.pollMax} }

// wait sleeps for the current interval, then grows it; it returns early with
// the context's error.
func (p *poller) wait(ctx context.Context) error {
	t := time.NewTimer(p.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	if p.delay = time.Duration(float64(p.delay) * pollGrowth); p.delay > p.max {
		p.delay = p.max
	}
	return nil
}
