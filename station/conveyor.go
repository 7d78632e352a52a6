package station

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/wire"
)

// Fixed readers in conveyor tunnels read one label several times as it
// passes, several readers read the same label, and a reader reports an
// item it could not read (a no-read). This file holds what a station does
// about that: debounce, no-reads, and each scanner's read rate.

// maxRepeats bounds the reads a debouncer remembers. Past it, expired ones
// are dropped; should that not be enough (a flood of distinct codes in one
// window) it forgets all, which can only store a repeat, never lose a read.
const maxRepeats = 4096

// debouncer remembers the stored reads of the last window, per scanner
// and for the whole station, with the signal each was answered with.
type debouncer struct {
	station time.Duration
	scanner map[string]time.Duration

	mu   sync.Mutex
	seen map[repeatKey]repeatEntry
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
}

func newDebouncer(station time.Duration, scanner map[string]time.Duration) *debouncer {
	return &debouncer{station: station, scanner: scanner, seen: map[repeatKey]repeatEntry{}}
}

// keys are the windows a read of scanner falls in.
func (d *debouncer) keys(scanner string, r device.Read) []repeatKey {
	var ks []repeatKey
	if d.scanner[scanner] > 0 {
		ks = append(ks, repeatKey{scanner, r.Symbology, string(r.Data)})
	}
	if d.station > 0 {
		ks = append(ks, repeatKey{"", r.Symbology, string(r.Data)})
	}
	return ks
}

// repeat reports whether r repeats a stored read within its window, and
// the signal that read got. A repeat extends the window: a label standing
// in front of a reader stays one scan.
func (d *debouncer) repeat(scanner string, r device.Read, now time.Time) (device.Signal, bool) {
	ks := d.keys(scanner, r)
	if len(ks) == 0 {
		return 0, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range ks {
		e, ok := d.seen[k]
		if ok && now.Sub(e.at) < e.window {
			for _, k := range ks {
				if e2, ok := d.seen[k]; ok {
					e2.at = now
					d.seen[k] = e2
				}
			}
			return e.sig, true
		}
	}
	return 0, false
}

// record remembers a stored read and the signal it was answered with.
func (d *debouncer) record(scanner string, r device.Read, sig device.Signal, now time.Time) {
	ks := d.keys(scanner, r)
	if len(ks) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.seen) >= maxRepeats {
		for k, e := range d.seen {
			if now.Sub(e.at) >= e.window {
				delete(d.seen, k)
			}
		}
		if len(d.seen) >= maxRepeats {
			clear(d.seen)
		}
	}
	for _, k := range ks {
		w := d.station
		if k.scanner != "" {
			w = d.scanner[scanner]
		}
		d.seen[k] = repeatEntry{at: now, window: w, sig: sig}
	}
}

// noRead takes a reader's no-read: not a scan and no feedback (there is
// no label to answer for); recorded as a buffered event when the station
// asks for it, and shown on the indicator.
func (s *Station) noRead(ctx context.Context, log *slog.Logger, sc Scanner, r device.Read) {
	if s.cfg.NoReadEvents {
		mode, c := s.State()
		_, err := s.store.Append(ctx, wire.EventStream(s.cfg.ID), func(seq uint64) ([]byte, error) {
			return wire.Event{ID: wire.NewID(), Source: s.source, Type: wire.NoReadType, Time: s.now(), Data: &wire.NoReadData{
				Seq: seq, Epoch: s.store.Epoch(), Station: s.cfg.ID, Mode: mode, Context: c,
				Scanner: sc.ID(), Raw: string(r.Data), ClockSynced: s.synced(),
			}}.Encode()
		})
		if err != nil {
			log.Error("no-read not recorded", "err", err)
			s.m.noreadEvents.WithLabelValues(s.cfg.ID, "refused").Inc()
		} else {
			s.m.noreadEvents.WithLabelValues(s.cfg.ID, "stored").Inc()
		}
	}
	s.indicate(sc.ID(), "", 0, r.Data, NoRead, []Reason{{Code: "noread", Message: "the reader could not read the item"}})
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
