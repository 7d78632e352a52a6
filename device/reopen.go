package device

import (
	"context"
	"log/slog"
	"time"
)

// Reopen is the life of a scanner's device: open it, use it until it is
// lost, and open it again with backoff, until ctx ends. Both drivers run it,
// so an unplugged scanner behaves the same whatever its transport.
type Reopen struct {
	// What names the device in log lines: "scanner port", "scanner".
	What    string
	Log     *slog.Logger
	Metrics *ScannerMetrics
	// MinBackoff and MaxBackoff bound the waits between attempts.
	MinBackoff, MaxBackoff time.Duration
	// Wake, when set, ends a wait early (kernel hotplug events).
	Wake <-chan struct{}
	// FullJitter draws each wait from [0, backoff] (FullJitter) rather
	// than [backoff/2, backoff] (Jitter): for network peers.
	FullJitter bool
	// Settled, when set, is called once, when the first attempt to open
	// the device ended: it is open and configured, or it failed. Until
	// then the gateway is not ready: a read in that window would meet a
	// half-configured port.
	Settled func()
}

// Session is one opened device: use runs until the device is lost (its
// error) or ctx ends, and closes the device before returning.
type Session struct {
	Use func(ctx context.Context) error
	// Attrs are logged with "opened" and "reconnected".
	Attrs []any
}

// Run opens and uses the device until ctx ends, and returns nil then. An
// open error for which fatal returns true ends Run with that error (no
// retry can cure it).
func (r Reopen) Run(ctx context.Context, open func() (Session, error), fatal func(error) bool) error {
	delay := r.MinBackoff
	everOpened := false
	var (
		outage      bool // the current outage has been logged at warn
		outageStart time.Time
		attempts    int
	)
	wait := func() bool {
		ok := SleepOrWake(ctx, r.jitter(delay), r.Wake)
		delay = min(2*delay, r.MaxBackoff)
		return ok
	}
	settle := func() {
		if r.Settled != nil {
			r.Settled()
			r.Settled = nil
		}
	}
	defer settle() // a fatal error or ctx's end settles it too
	for ctx.Err() == nil {
		s, err := open()
		settle()
		if err != nil {
			if fatal != nil && fatal(err) {
				return err
			}
			if ctx.Err() != nil {
				// An open that takes ctx (a TCP dial) fails when ctx
				// ends: shutdown, not an outage.
				return nil
			}
			r.Metrics.Errors["io"].Inc()
			attempts++
			if !outage {
				// One warning per outage: an unplugged scanner is retried
				// every few seconds, and the log must stay readable on an
				// SD card.
				r.Log.Warn("cannot open "+r.What+"; retrying", "err", err)
				outage, outageStart = true, time.Now()
			} else {
				r.Log.Debug("cannot open "+r.What, "err", err, "attempt", attempts)
			}
			if !wait() {
				return nil
			}
			continue
		}

		if everOpened {
			r.Metrics.Reconnects.Inc()
			r.Log.Info("scanner reconnected", append(s.Attrs, "outage", time.Since(outageStart).Round(time.Millisecond), "attempts", attempts+1)...)
		} else {
			r.Log.Info("scanner opened", s.Attrs...)
		}
		everOpened, outage, attempts = true, false, 0
		opened := time.Now()
		err = s.Use(ctx)
		if ctx.Err() != nil {
			return nil
		}
		r.Metrics.Errors["io"].Inc()
		r.Log.Warn(r.What+" lost; reopening", "err", err)
		outage, outageStart = true, time.Now()
		// Only a connection that stayed up for a while earns a fast retry;
		// a device that opens and fails at once keeps backing off instead
		// of spinning.
		if time.Since(opened) >= r.MaxBackoff {
			delay = r.MinBackoff
		}
		if !wait() {
			return nil
		}
	}
	return nil
}

func (r Reopen) jitter(d time.Duration) time.Duration {
	if r.FullJitter {
		return FullJitter(d)
	}
	return Jitter(d)
}
