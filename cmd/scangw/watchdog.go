package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/uplink"
)

// systemd's watchdog (WatchdogSec=) restarts the daemon when its pings
// stop. A ping on a timer alone would only prove that the Go runtime
// still schedules goroutines; these pings vouch that the parts which
// turn a read into a delivered event still move: the buffer's committer,
// every station's read loops and the uplink's pump. Each reports since
// when the piece of work in its hands began (zero while it waits for
// work); one that holds a piece longer than the watchdog interval is
// wedged, and the pings stop until it lets go. Waiting is never busy: a
// dock with no scans for a night, or a broker down for a day, is healthy.

// watchedPart is a part of the daemon the watchdog vouches for.
type watchedPart struct {
	name string
	// busy reports since when the part's piece of work in progress began
	// (zero while it waits for work), and, for a part with several loops,
	// which one holds it (a station's id).
	busy func() (who string, since time.Time)
}

// daemonParts are the parts whose progress the pings vouch for.
func daemonParts(buf *buffer.Buffer, stations *station.Set, up *uplink.Uplink) []watchedPart {
	return []watchedPart{
		{"buffer committer", func() (string, time.Time) { return "", buf.Busy() }},
		// The set's current stations: a reload changes them in place.
		{"station read loop", stations.Busy},
		{"uplink pump", func() (string, time.Time) { return "", up.Busy() }},
	}
}

// pinger is what the watchdog tells systemd (the notifier).
type pinger interface {
	Watchdog() error
	Status(text string) error
}

// watchdog pings every interval/2, as sd_watchdog_enabled(3) advises,
// while no part has been busy with one piece of work for longer than the
// interval. Its limit is the interval itself, so it needs no setting of
// its own: WatchdogSec= says how long a stall may last.
type watchdog struct {
	sd    pinger
	every time.Duration // between checks (and pings)
	limit time.Duration // a piece of work held longer is a wedge
	parts []watchedPart
	log   *slog.Logger
	now   func() time.Time

	seen        []episode // per part, the piece of work it held at the last check
	wedged      bool      // pings stopped (and that was logged)
	pingFailing bool      // the last ping could not be sent (and that was logged)
}

// episode is one piece of work a part was seen holding.
type episode struct {
	who   string
	since time.Time // as the part reports it; zero: it held none
	first time.Time // when the watchdog first saw it, on its own clock
}

// wedge is a part found holding one piece of work too long.
type wedge struct {
	part, who string
	since     time.Time     // as the part reports it
	held      time.Duration // for how long, as the watchdog measures it
}

func newWatchdog(sd pinger, interval time.Duration, parts []watchedPart, log *slog.Logger) *watchdog {
	return &watchdog{
		sd: sd, every: interval / 2, limit: interval, parts: parts, log: log, now: time.Now,
		seen: make([]episode, len(parts)),
	}
}

// Run checks and pings until ctx ends; the first check is at once.
func (w *watchdog) Run(ctx context.Context) error {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		w.step()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// step checks the parts once and pings if none is wedged. The first check
// that finds a wedge logs it (the journal's answer to why systemd
// restarted the daemon) and sets the status; pings resume, and that is
// logged too, should the part let go before systemd acts.
func (w *watchdog) step() {
	stuck, found := w.check(w.now())
	if found {
		if !w.wedged {
			w.wedged = true
			w.log.Error("watchdog: a part of the daemon is stuck; no more watchdog pings, systemd will restart the daemon",
				"part", stuck.part, "which", stuck.who, "busy_since", stuck.since, "busy_for", stuck.held.Round(time.Millisecond),
				"limit", w.limit)
			w.status(fmt.Sprintf("stuck: %s busy since %s; watchdog pings stopped", stuck.name(), stuck.since.Format(time.RFC3339)))
		}
		return
	}
	if w.wedged {
		w.wedged = false
		w.log.Warn("watchdog: the stuck part moves again; watchdog pings resume")
		w.status("running")
	}
	err := w.sd.Watchdog()
	switch {
	case err != nil && !w.pingFailing:
		w.log.Warn("watchdog ping not sent", "err", err)
	case err == nil && w.pingFailing:
		w.log.Info("watchdog pings sent again")
	}
	w.pingFailing = err != nil
}

func (w *watchdog) status(text string) {
	if err := w.sd.Status(text); err != nil {
		w.log.Warn("sd_notify status", "err", err)
	}
}

// check reports the part that has held one piece of work longest, if it
// held it longer than the limit.
//
// A part's own time only names the piece of work: it is the wall clock's,
// which NTP steps (a Pi boots with the time it had at shutdown). How long
// a piece was held is measured on the watchdog's clock from when it was
// first seen, and the part's time refines that only within one check
// interval before it.
func (w *watchdog) check(now time.Time) (wedge, bool) {
	var worst wedge
	found := false
	for i, p := range w.parts {
		who, since := p.busy()
		if since.IsZero() {
			w.seen[i] = episode{}
			continue
		}
		e := &w.seen[i]
		if !e.since.Equal(since) || e.who != who {
			*e = episode{who: who, since: since, first: now}
		}
		seenFor := now.Sub(e.first)
		held := min(max(now.Sub(since), seenFor), seenFor+w.every)
		if held > w.limit && (!found || held > worst.held) {
			worst, found = wedge{part: p.name, who: who, since: since, held: held}, true
		}
	}
	return worst, found
}

// name is the wedged part as the status line says it.
func (s wedge) name() string {
	if s.who == "" {
		return s.part
	}
	return s.part + " " + s.who
}

// superviseSystemd speaks sd_notify for the daemon: READY=1 once every
// station is ready (its pipeline runs and each scanner is open and
// configured, or failed to open; the broker is not waited for: the dock
// works while it is down), then watchdog pings while the parts make
// progress, and STOPPING=1 when ctx ends. Reloads say RELOADING=1 and
// READY=1 themselves.
func superviseSystemd(ctx context.Context, sd *notifier, ready func() bool, parts []watchedPart, log *slog.Logger) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
	log.Info("ready")
	if err := sd.Ready(); err != nil {
		log.Warn("sd_notify ready", "err", err)
	}
	sd.Status("running")
	if d := sd.WatchdogInterval(); d > 0 {
		log.Info("watchdog on", "interval", d)
		newWatchdog(sd, d, parts, log).Run(ctx)
	} else {
		<-ctx.Done()
	}
	if err := sd.Stopping(); err != nil {
		log.Warn("sd_notify stopping", "err", err)
	}
	return nil
}

// systemdNotifier is the daemon's notifier, from its environment. A
// variable it cannot use is logged: systemd would then restart a daemon
// that never said it was ready, or never pinged.
func systemdNotifier(log *slog.Logger) *notifier {
	sd, err := newNotifier(os.Getenv, os.Getpid())
	if err != nil {
		log.Error("systemd notification environment", "err", err)
	}
	return sd
}
