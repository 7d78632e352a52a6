package station

import (
	"sync/atomic"
	"time"
)

// clockCheckEvery is how often a station asks the kernel whether its clock
// is synchronised: that changes once after boot (or when NTP is lost), and
// a scan should not cost a system call for it.
const clockCheckEvery = time.Second

// cachedClock answers synced, asking it at most once per every.
func cachedClock(synced func() bool, every time.Duration) func() bool {
	var last atomic.Int64 // unix ns of the last ask; 0: never
	var answer atomic.Bool
	return func() bool {
		now := time.Now().UnixNano()
		if l := last.Load(); l == 0 || now-l >= int64(every) {
			answer.Store(synced())
			last.Store(now)
		}
		return answer.Load()
	}
}
