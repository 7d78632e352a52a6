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
	// maxOutcomeData clips the scanned bytes an outcome keeps.
	maxOutcomeData = 96
)

// recent is a ring of the latest outcomes.
type recent struct {
	mu   sync.Mutex
	ring [recentSize]Outcome
	n    int // outcomes ever added
}

func (r *recent) add(o Outcome) {
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

// outcomeData renders at most maxOutcomeData bytes of a read for people:
// invalid UTF-8 as U+FFFD, C0 controls and DEL as their Control Pictures
// (GS, the GS1 separator, shows as ␝), and C1 controls and the bidi
// controls as U+FFFD, so that a crafted code cannot make the page show
// text other than what was scanned.
func outcomeData(data []byte) string {
	clipped := len(data) > maxOutcomeData
	if clipped {
		n := maxOutcomeData
		for n > 0 && !utf8.RuneStart(data[n]) {
			n--
		}
		data = data[:n]
	}
	b := make([]rune, 0, len(data)+1)
	for _, r := range string(data) {
		switch {
		case r < 0x20:
			r += 0x2400
		case r == 0x7F:
			r = 0x2421
		case r >= 0x80 && r <= 0x9F, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			r = utf8.RuneError
		}
		b = append(b, r)
	}
	if clipped {
		b = append(b, '…')
	}
	return string(b)
}
