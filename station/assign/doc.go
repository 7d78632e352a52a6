// Package assign hands out the serial numbers a gateway's stations assign
// to units that arrive without one, and prints their labels: it turns a
// request (a trigger read, a downlink command, `scangw serial next`) into
// the io.scangw.assigned.v1 event and the state that goes with it, and
// runs the print outbox that brings each label to its printer once.
//
// # Reserve, commit, then apply
//
// Prepare takes the gateway-wide assign lock, issues the scheme's next
// number (serials.Counter.Issue, which changes nothing) and returns the
// event and the state to store: the advanced counter, the serial's issue
// record, the station's last serial and the print job. The caller stores
// them in one buffer Write together with its own records (the trigger
// read's scan) and calls Done with whether the Write committed. Only then
// does the counter advance in memory and the job reach the printer
// worker, and only then is the lock released, so two stations sharing a
// scheme never issue the same number. A power cut before the commit
// leaves nothing; one after it leaves an issued serial whose label may be
// missing (a re-print repairs it), never a serial issued twice.
//
// # State keys
//
//	serials/<scheme>                   the scheme's serials.Counter (JSON)
//	serials/<scheme>/issued/<serial>   who got the serial: product, station, event id, counter
//	serials/last/<station>             the station's last serial and its scheme
//	print/next                         the number of the next print job
//	print/<printer>/<n>                a job waiting for its printer (n: 20 digits)
//	print/doubt/<printer>/<n>          a job that may or may not have printed
//
// The issue record is how a re-print finds the product of a serial, and
// the proof that a serial was issued: Prepare refuses to issue a serial
// that already has one (a counter lost or set back), rather than hand it
// out twice. A scheme named "last" and printers named "next" or "doubt"
// are refused, since their keys would mix with these.
//
// # The print outbox
//
// Each printer has a worker (Run) that takes its jobs in job-number
// order. Where the printer answers ~HS it asks first, and holds the job
// while the printer is not ready (paper out, head open, paused, out of
// reach), trying again after Options.Retry. To send, it first marks the
// job "sending" durably, then sends, then deletes the job. A printer that
// could not be reached at all (the connection or the device open failed,
// so no byte left) gets the job again later: an outage delays labels, in
// order, and loses none.
//
// A job is printed at most once. It is printed exactly once unless the
// send is cut off after bytes went out: the gateway died between the
// mark and the end of the send (the job is found marked at the next
// start), or the connection to the printer broke part-way. Then the
// printer may have printed the label, or part of it that still carries
// the serial, and sending it again could put one serial on two units. So
// such a job is never sent again by itself: it moves to print/doubt, is
// logged with its serial, counted (scangw_printer_jobs_total
// result="in_doubt") and listed by InDoubt; the operator looks at the
// printer and re-prints (PrepareReprint), which marks the label REPRINT
// and clears the serial's doubt entries.
package assign
