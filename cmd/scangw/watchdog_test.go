package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// fakeSystemd records what the watchdog tells systemd.
type fakeSystemd struct {
	pings    int
	statuses []string
	fail     error // returned by Watchdog
}

func (f *fakeSystemd) Watchdog() error {
	if f.fail != nil {
		return f.fail
	}
	f.pings++
	return nil
}

func (f *fakeSystemd) Status(text string) error {
	f.statuses = append(f.statuses, text)
	return nil
}

// fakePart is a part whose piece of work in progress the test sets.
type fakePart struct {
	who   string
	since time.Time
}

func (p *fakePart) busy() (string, time.Time) { return p.who, p.since }

// watchdogRig is a watchdog over fake parts on a fake clock, with an
// interval of 30 s (checks every 15 s).
type watchdogRig struct {
	t     *testing.T
	w     *watchdog
	sd    *fakeSystemd
	parts map[string]*fakePart
	now   time.Time
	logs  *bytes.Buffer
}

func newWatchdogRig(t *testing.T, names ...string) *watchdogRig {
	r := &watchdogRig{t: t, sd: &fakeSystemd{}, parts: map[string]*fakePart{},
		now: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC), logs: &bytes.Buffer{}}
	var parts []watchedPart
	for _, n := range names {
		p := &fakePart{}
		r.parts[n] = p
		parts = append(parts, watchedPart{name: n, busy: p.busy})
	}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.w = newWatchdog(r.sd, 30*time.Second, parts, log)
	r.w.now = func() time.Time { return r.now }
	return r
}

// tick advances the clock by one check interval and checks; it reports
// whether that check pinged.
func (r *watchdogRig) tick() bool {
	r.now = r.now.Add(r.w.every)
	before := r.sd.pings
	r.w.step()
	return r.sd.pings > before
}

// ticks runs n checks and returns how many pinged.
func (r *watchdogRig) ticks(n int) int {
	pinged := 0
	for range n {
		if r.tick() {
			pinged++
		}
	}
	return pinged
}

func TestWatchdogPingsWhileIdle(t *testing.T) {
	r := newWatchdogRig(t, "buffer", "stations", "uplink")
	if n := r.ticks(10); n != 10 {
		t.Fatalf("%d pings in 10 checks of idle parts, want 10", n)
	}
}

// Many short pieces of work, each new at every check (a busy dock), are
// progress however long the part is never idle.
func TestWatchdogPingsThroughShortWork(t *testing.T) {
	r := newWatchdogRig(t, "stations")
	for i := range 20 {
		r.parts["stations"].since = r.now.Add(-time.Second) // began just now
		r.parts["stations"].who = "dock-1"
		if !r.tick() {
			t.Fatalf("check %d: no ping while the part takes a new read every check", i)
		}
		r.parts["stations"].since = r.now // the next read
	}
}

func TestWatchdogStopsPingsForAStuckPartAndResumes(t *testing.T) {
	r := newWatchdogRig(t, "buffer committer", "station read loop", "uplink pump")
	st := r.parts["station read loop"]
	st.who, st.since = "dock-2", r.now
	// Held for 15 s, then 30 s: within the limit (30 s, the interval).
	if n := r.ticks(2); n != 2 {
		t.Fatalf("%d pings while the read was held up to the limit, want 2", n)
	}
	// 45 s and on: stuck. Pings stop and stay stopped; it is said once.
	if n := r.ticks(6); n != 0 {
		t.Fatalf("%d pings while a station read was stuck, want 0", n)
	}
	logs := r.logs.String()
	if c := strings.Count(logs, "no more watchdog pings"); c != 1 {
		t.Fatalf("the wedge was logged %d times, want once:\n%s", c, logs)
	}
	for _, want := range []string{`part="station read loop"`, "which=dock-2", "busy_since=2026-03-01T08:00:00.000Z", "busy_for=45s", "level=ERROR"} {
		if !strings.Contains(logs, want) {
			t.Errorf("wedge log lacks %s:\n%s", want, logs)
		}
	}
	if len(r.sd.statuses) != 1 || !strings.Contains(r.sd.statuses[0], "station read loop dock-2 busy since 2026-03-01T08:00:00Z") {
		t.Errorf("statuses %q, want one naming the stuck station", r.sd.statuses)
	}
	// It lets go before systemd acted: pings resume, and that is said.
	st.since = time.Time{}
	if !r.tick() {
		t.Fatal("no ping once the stuck part moved again")
	}
	if !strings.Contains(r.logs.String(), "pings resume") || r.sd.statuses[len(r.sd.statuses)-1] != "running" {
		t.Errorf("recovery not logged or not in the status:\n%s\n%q", r.logs.String(), r.sd.statuses)
	}
}

// The part's time is the wall clock, which NTP steps. A read that began
// before a step of days forward is not days old: the watchdog only
// believes the part's time within one check before it first saw it.
func TestWatchdogSurvivesClockSteps(t *testing.T) {
	r := newWatchdogRig(t, "stations")
	st := r.parts["stations"]
	st.who, st.since = "dock-1", r.now.Add(-72*time.Hour)
	if n := r.ticks(2); n != 2 {
		t.Fatalf("%d pings in the first 30 s of a read begun before the clock stepped forward, want 2", n)
	}
	// It still is stuck once the watchdog's own clock says so.
	if n := r.ticks(2); n != 0 {
		t.Fatalf("%d pings for a read held 45 s and 60 s, want 0", n)
	}
	// Backward: a read that seems to begin in the future is timed from
	// when it was first seen.
	r = newWatchdogRig(t, "stations")
	st = r.parts["stations"]
	st.who, st.since = "dock-1", r.now.Add(time.Hour)
	if n := r.ticks(3); n != 3 {
		t.Fatalf("%d pings while a read stamped in the future was seen for up to 30 s, want 3", n)
	}
	if r.tick() {
		t.Fatal("a ping for a read stamped in the future and seen for 45 s")
	}
}

// With two parts stuck, the one stuck longest is named.
func TestWatchdogNamesTheLongestStuck(t *testing.T) {
	r := newWatchdogRig(t, "buffer committer", "uplink pump")
	r.parts["uplink pump"].since = r.now
	r.tick()
	r.parts["buffer committer"].since = r.now
	r.ticks(4)
	if !strings.Contains(r.logs.String(), `part="uplink pump"`) || strings.Contains(r.logs.String(), `part="buffer committer"`) {
		t.Fatalf("want the uplink named, held longest:\n%s", r.logs.String())
	}
}

func TestWatchdogLogsPingFailuresOnce(t *testing.T) {
	r := newWatchdogRig(t, "buffer")
	r.sd.fail = errors.New("sd_notify /run/systemd/notify: connection refused")
	r.ticks(5)
	if c := strings.Count(r.logs.String(), "watchdog ping not sent"); c != 1 {
		t.Fatalf("failed pings logged %d times, want once:\n%s", c, r.logs.String())
	}
	r.sd.fail = nil
	if !r.tick() || !strings.Contains(r.logs.String(), "watchdog pings sent again") {
		t.Fatalf("recovery of the pings not logged:\n%s", r.logs.String())
	}
}
