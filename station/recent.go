package station

import (
	"sync"
	"time"
	"unicode/utf8"
)

// Outcome is what became of one read: the verdict of a stored scan, or
// Refused (not stored) or Discarded (never a scan), as the station
// indicator shows it. The status page lists the latest of each station,
// so a technician at the dock sees what the gateway made of a scan.
type Outcome struct {
	Time    time.Time `json:"time"`
	Scanner string    `json:"scanner"`
	Scan    string    `json:"scan,omitempty"` // the scan event's id
	Seq     uint64    `json:"seq,omitempty"`  // once stored
	Data    string    `json:"data,omitempty"` // the scanned text, clipped
	Verdict string    `json:"verdict"`
	Reasons []Reason  `json:"reasons"`
}

const (
	// recentSize is how many outcomes a station keeps.
	recentSize = 20
	// maxOutcomeData clips the scanned text an outcome keeps.
	maxOutcomeData = 96
)

// recent is a ring of the latest outcomes.
type recent struct {
	mu   sync.Mutex
	ring [recentSize]Outcome
	n    int // outcomes ever added
}

func (r *recent) add(o Outcome) {
	if len(o.Data) > maxOutcomeData {
		n := maxOutcomeData
		for n > 0 && !utf8.RuneStart(o.Data[n]) {
			n--
		}
		o.Data = o.Data[:n] + "…"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring[r.n%recentSize] = o
	r.n++
}

// latest returns the kept outcomes, newest first.
func (r *recent) latest() []Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Outcome, 0, min(r.n, recentSize))
	for i := r.n - 1; i >= 0 && i >= r.n-recentSize; i-- {
		out = append(out, r.ring[i%recentSize])
	}
	return out
}

// Recent returns the station's latest outcomes, newest first (at most 20).
func (s *Station) Recent() []Outcome { return s.recent.latest() }

// printable renders scanned bytes for people: invalid UTF-8 as U+FFFD and
// control characters as their Control Pictures (GS, the GS1 separator,
// shows as ␝).
func printable(data []byte) string {
	b := make([]rune, 0, len(data))
	for _, r := range string(data) {
		switch {
		case r < 0x20:
			r += 0x2400
		case r == 0x7F:
			r = 0x2421
		}
		b = append(b, r)
	}
	return string(b)
}
