package device

import (
	"context"
	"math/rand/v2"
	"time"
)

// Jitter spreads d over [d/2, d] so that scanners on one USB hub, all lost
// at the same reset, do not retry in lockstep.
func Jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// FullJitter spreads d over [0, d]: for network peers, where retries from
// many clients contend for one server (a reader, a switch that rebooted),
// a wait drawn from the whole range spreads them best, and a redial
// that comes early costs only a refused connection.
func FullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return rand.N(d + 1)
}

// Sleep waits d or until ctx ends, reporting whether the wait completed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// SleepOrWake is Sleep that a hotplug event can cut short: it waits d, or
// until wake delivers, or until ctx ends. It reports true when the wait
// ended by d or by wake, false when ctx ended. A nil wake never delivers,
// so SleepOrWake then behaves as Sleep.
func SleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-wake:
		return true
	}
}
