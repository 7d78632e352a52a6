package station

import (
	"context"
	"sync"
	"time"

	"github.com/scangw/scangw/device"
)

// Fixed readers in conveyor tunnels read one label several times as it
// passes, several readers read the same label, and a reader reports an
// item it could not read (a no-read). This file holds what a station does
// about that: debounce, no-reads, and each scanner's read rate.

// maxRepeats bounds the reads a debouncer remembers. Past it, expired ones
// are dropped; should that not be enough (a flood of distinct codes in one
// window) it forgets all, which can only store a repeat, never lose a read.
const maxRepeats = 4096

// maxRepeatLen is the longest read that is debounced: it bounds the
// debouncer's memory (4096 × 2 × 512 bytes). Longer reads are always
// scans; a tunnel's labels are far shorter.
const maxRepeatLen = 512

// debouncer remembers the stored reads of the last window, per scanner
// and for the whole station, with the signal each was answered with. A
// read that is being stored holds its place (pending), so that the same
// label from another reader in that moment waits for it instead of being
// stored twice.
type debouncer struct {
	station time.Duration
	scanner map[string]time.Duration

	mu   sync.Mutex
	seen map[repeatKey]*repeatEntry
}

type repeatKey struct {
	scanner   string // "" for the station's window
	symbology string
	data      string
}

type repeatEntry struct {
	at     time.Time // the last read of it, stored or suppressed
	window time.Duration
	sig    device.Signal
	// pending is closed once the first read's outcome is known; nil
	// after, for a stored read.
	pending chan struct{}
}

// claim is a first read's hold on its windows until it is stored or
// refused (resolve).
type claim struct {
	keys    []repeatKey
	entries []*repeatEntry
	done    chan struct{}
}

func newDebouncer(station time.Duration, scanner map[string]time.Duration) *debouncer {
	return &debouncer{station: station, scanner: scanner, seen: map[repeatKey]*repeatEntry{}}
}

// keys are the windows a read of scanner falls in.
func (d *debouncer) keys(scanner string, r device.Read) []repeatKey {
	if len(r.Data) > maxRepeatLen {
		return nil
	}
	var ks []repeatKey
	if d.scanner[scanner] > 0 {
		ks = append(ks, repeatKey{scanner, r.Symbology, string(r.Data)})
	}
	if d.station > 0 {
		ks = append(ks, repeatKey{"", r.Symbology, string(r.Data)})
	}
	return ks
}

func (d *debouncer) window(k repeatKey) time.Duration {
	if k.scanner != "" {
		return d.scanner[k.scanner]
	}
	return d.station
}

// check reports whether r repeats a stored read within its window, and the
// signal that read got. A repeat extends the window: a label standing in
// front of a reader stays one scan. Otherwise it returns the claim the
// read holds while it is stored (nil when no window applies), to be
// resolved with its outcome. A read that finds the same label being
// stored waits for that outcome, or for ctx.
func (d *debouncer) check(ctx context.Context, scanner string, r device.Read, now time.Time) (device.Signal, bool, *claim) {
	ks := d.keys(scanner, r)
	if len(ks) == 0 {
		return 0, false, nil
	}
	for {
		d.mu.Lock()
		var wait chan struct{}
		for _, k := range ks {
			e := d.seen[k]
			switch {
			case e == nil:
			case e.pending != nil:
				wait = e.pending
			case now.Sub(e.at) < e.window:
				for _, k := range ks {
					if e2 := d.seen[k]; e2 != nil && e2.pending == nil {
						e2.at = now
					}
				}
				sig := e.sig
				d.mu.Unlock()
				return sig, true, nil
			}
		}
		if wait == nil {
			c := d.hold(ks, now)
			d.mu.Unlock()
			return 0, false, c
		}
		d.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return 0, false, nil // stopping: store it rather than guess
		}
	}
}

// hold places a pending entry under every key; called with mu held.
func (d *debouncer) hold(ks []repeatKey, now time.Time) *claim {
	if len(d.seen) >= maxRepeats {
		for k, e := range d.seen {
			if e.pending == nil && now.Sub(e.at) >= e.window {
				delete(d.seen, k)
			}
		}
		if len(d.seen) >= maxRepeats {
			clear(d.seen)
		}
	}
	c := &claim{keys: ks, done: make(chan struct{})}
	for _, k := range ks {
		e := &repeatEntry{at: now, window: d.window(k), pending: c.done}
		d.seen[k] = e
		c.entries = append(c.entries, e)
	}
	return c
}

// resolve ends a claim: a stored read is remembered with the signal it was
// answered with; a refused one is forgotten, so that its repeat (or the
// read waiting for it) is tried again.
func (d *debouncer) resolve(c *claim, sig device.Signal, stored bool) {
	if c == nil {
		return
	}
	d.mu.Lock()
	for i, k := range c.keys {
		e := c.entries[i]
		switch {
		case d.seen[k] != e: // forgotten meanwhile (the memory was full)
		case stored:
			e.sig, e.pending = sig, nil
		default:
			delete(d.seen, k)
		}
	}
	d.mu.Unlock()
	close(c.done)
}

// forget drops every remembered read: after a change of mode or context
// a label is a new scan, judged anew.
func (d *debouncer) forget() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, e := range d.seen {
		if e.pending == nil {
			delete(d.seen, k)
		}
	}
}

// readRateFrames is how many of a scanner's last frames its read rate
// covers.
const readRateFrames = 100

// readRates keeps, per scanner, whether each of its last frames was a
// code (not a no-read and not garbled).
type readRates struct {
	mu sync.Mutex
	by map[string]*rateRing
}

type rateRing struct {
	good [readRateFrames]bool
	n    int // frames ever added
}

func (r *readRates) add(scanner string, good bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.by == nil {
		r.by = map[string]*rateRing{}
	}
	ring := r.by[scanner]
	if ring == nil {
		ring = &rateRing{}
		r.by[scanner] = ring
	}
	ring.good[ring.n%readRateFrames] = good
	ring.n++
}

// rate is the share of good frames among the scanner's last ones, or nil
// before its first frame.
func (r *readRates) rate(scanner string) *float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ring := r.by[scanner]
	if ring == nil {
		return nil
	}
	n := min(ring.n, readRateFrames)
	good := 0
	for _, g := range ring.good[:n] {
		if g {
			good++
		}
	}
	v := float64(good) / float64(n)
	return &v
}
