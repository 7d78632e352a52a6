package station

import "golang.org/x/sys/unix"

// KernelClockSynced reports whether the kernel considers its clock
// synchronised (an NTP or PTP daemon cleared STA_UNSYNC). A Pi boots with the
// time it had at shutdown, so event times are only trusted once this is true.
func KernelClockSynced() bool {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
