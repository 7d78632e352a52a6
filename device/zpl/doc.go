// Package zpl drives label printers that speak ZPL (Zebra and the many
// printers that emulate it): it sends print jobs and reads the printer's
// status. What a job says is station/label's business; this package moves
// bytes.
//
// # Two ways to a printer
//
// A network printer takes raw jobs on a TCP port, 9100 by convention.
// Send opens one connection per job, writes it, half-closes and waits
// for the printer to close in turn: the printer reads to the end of the
// stream before it closes, so a nil return means it read every byte, not
// only that the bytes left the gateway. A USB printer is a device file
// (/dev/usb/lp0, the kernel's usblp driver), opened for each job and
// written.
//
// A job cut off part-way (the printer switched off, the cable pulled)
// fails with ErrUnreachable and is sent again whole; the printer may then
// have kept the start of the first attempt, which ZPL discards or prints
// as a broken label once the next ^XA arrives. Nothing on the wire tells
// the two apart.
//
// # Status
//
// Over TCP, Status sends ~HS and parses the Host Status Return: three
// strings of flags and counters (ParseHostStatus). Status.Reason names the
// condition that stops printing (paper out, head open, paused …) for a
// log line, a metric label and the status page.
//
// # Errors
//
// Send and Status tell three cases apart with errors.Is: ErrUnreachable
// (no connection or the connection lost), ErrNotReady (the printer
// answered and cannot print; a *NotReadyError holds its Status) and
// ErrNoReply (no answer to ~HS). ErrorReason maps any of them to a
// bounded label.
package zpl
