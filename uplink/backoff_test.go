package uplink

import (
	"testing"
	"time"
)

// TestBackoff checks the full-jitter backoff: every wait lies in
// [lo, min(hi, lo·2^(n-1))], the ceiling doubles with each failure until it
// reaches hi, and the waits spread over the whole range rather than
// clustering at the ceiling. Random draws are checked with sample sizes
// that make a false failure less likely than 2^-100.
func TestBackoff(t *testing.T) {
	const samples = 2000
	for _, tc := range []struct {
		name   string
		lo, hi time.Duration
	}{
		{"test", 20 * time.Millisecond, 200 * time.Millisecond},
		{"defaults", 500 * time.Millisecond, 60 * time.Second},
		{"tiny", time.Nanosecond, time.Microsecond},
		{"hi equals lo", time.Second, time.Second},
		{"hi below lo", time.Second, time.Millisecond},
		// lo·2^30 overflows int64 for lo above ~8.6 s: the ceiling must
		// still be hi, not a wrapped value.
		{"large lo", 10 * time.Second, time.Hour},
		{"large lo, larger hi", 9*time.Minute + 9757083*time.Microsecond, 24 * time.Hour},
		{"large lo, huge hi", 17182850 * time.Microsecond, 100000 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prevCeil := time.Duration(0)
			for n := 1; n <= 70; n++ {
				ceil := tc.hi
				if n-1 < 62 && tc.lo <= tc.hi>>(n-1) {
					ceil = tc.lo << (n - 1)
				}
				ceil = max(ceil, tc.lo) // hi below lo: lo wins
				if ceil < prevCeil {
					t.Fatalf("test bug: ceiling shrank at n=%d", n)
				}
				var lowest, highest time.Duration = tc.hi + tc.lo, 0
				var lowerHalf int
				for range samples {
					d := backoff(tc.lo, tc.hi, n)
					if d < tc.lo || d > ceil {
						t.Fatalf("backoff(%v, %v, %d) = %v, want within [%v, %v]", tc.lo, tc.hi, n, d, tc.lo, ceil)
					}
					lowest, highest = min(lowest, d), max(highest, d)
					if d < tc.lo+(ceil-tc.lo)/2 {
						lowerHalf++
					}
				}
				if ceil-tc.lo < 4 {
					continue // too narrow a range to say anything about spread
				}
				// The ceiling is reached: some wait is in its top tenth,
				// above the previous ceiling when it grew.
				if top := ceil - max((ceil-tc.lo)/10, 1); highest < top || (ceil > prevCeil && highest < prevCeil) {
					t.Errorf("n=%d: highest of %d waits is %v, want one above %v and %v (ceiling %v)", n, samples, highest, top, prevCeil, ceil)
				}
				// Full jitter: waits spread down to lo, not just below the
				// ceiling.
				if bottom := tc.lo + max((ceil-tc.lo)/10, 1); lowest > bottom {
					t.Errorf("n=%d: lowest of %d waits is %v, want one below %v (full jitter over [%v, %v])", n, samples, lowest, bottom, tc.lo, ceil)
				}
				if lowerHalf < samples/4 || lowerHalf > samples*3/4 {
					t.Errorf("n=%d: %d of %d waits in the lower half of [%v, %v], want about half", n, lowerHalf, samples, tc.lo, ceil)
				}
				prevCeil = ceil
			}
		})
	}
}

// TestBackoffFirstRetry pins the first wait to lo: a session that was up
// and ended is retried after ReconnectMin, not a random longer time.
func TestBackoffFirstRetry(t *testing.T) {
	for range 100 {
		if d := backoff(50*time.Millisecond, time.Minute, 1); d != 50*time.Millisecond {
			t.Fatalf("backoff(50ms, 1m, 1) = %v, want 50ms", d)
		}
	}
}
