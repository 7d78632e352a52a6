package buffer

import "time"

// Busy reports since when the committer has been in the commit it is
// running (writing the transaction, syncing it, answering its appenders);
// zero while it waits for work. A commit is milliseconds, seconds on a
// slow card: the daemon's watchdog calls one that lasts far longer a
// wedged buffer (a sync that never returns), which only a restart can
// clear. The time is the wall clock's, as an identity of the commit more
// than a measure: the watchdog times it on its own clock.
func (b *Buffer) Busy() time.Time {
	ns := b.busy.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
