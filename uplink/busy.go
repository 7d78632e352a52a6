package uplink

import "time"

// Busy reports since when the uplink's pump has been reading the queue
// (the buffer's Peek); zero while it waits: for new messages, for a slot
// in the in-flight window (a PUBACK), for the publisher, or for a session
// at all. Waiting on the broker is never busy: an outage of hours is the
// uplink working as designed, while a queue read that never returns is a
// wedge the daemon's watchdog must see. The time is the wall clock's, as
// an identity of the read more than a measure: the watchdog times it on
// its own clock.
func (u *Uplink) Busy() time.Time {
	ns := u.busy.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
