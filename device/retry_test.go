package device

import (
	"testing"
	"time"
)

// TestJitterRanges: Jitter keeps at least half the backoff, FullJitter
// draws from all of it; over many draws FullJitter goes below half (the
// chance that 1,000 fair draws all miss is 2^-1000).
func TestJitterRanges(t *testing.T) {
	const d = time.Second
	low := false
	for range 1000 {
		if j := Jitter(d); j < d/2 || j > d {
			t.Fatalf("Jitter(%v) = %v, outside [d/2, d]", d, j)
		}
		j := FullJitter(d)
		if j < 0 || j > d {
			t.Fatalf("FullJitter(%v) = %v, outside [0, d]", d, j)
		}
		low = low || j < d/2
	}
	if !low {
		t.Error("FullJitter never drew below d/2")
	}
	if FullJitter(0) != 0 || Jitter(1) != 1 {
		t.Error("degenerate backoffs changed")
	}
}
