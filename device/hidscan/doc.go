// Package hidscan drives barcode scanners on USB HID, opened through
// github.com/karalabe/hid. A HID scanner speaks one of two protocols, and a
// Scanner is configured for one of them.
//
// # Keyboard wedge
//
// Most scanners ship as USB keyboards: they "type" each scan as key
// presses in 8-byte boot keyboard reports (a modifier byte, a reserved
// byte, and up to six pressed keys). The report names physical keys, not
// characters, so the text depends on the keyboard layout the scanner was
// set up for: on a French AZERTY layout the digits need Shift, on a German
// QWERTZ layout Y and Z trade places and "@" is AltGr+Q. A WedgeDecoder
// therefore needs the layout per scanner, and it tracks what a host
// keyboard driver tracks: which keys were already down (a key counts only
// in the report where it first appears, so rollover and key repeat come
// out right), Shift, Caps Lock, AltGr, dead keys, and the Alt+keypad codes
// and Ctrl+key combinations by which scanners send control characters
// such as the GS separator of GS1 data (Ctrl+] or Alt+0029). A scan ends at
// its terminator key (Enter by default) or, for scanners set up without a
// suffix, after a quiet gap with no keys; the decoder takes report times as
// arguments, so gaps are tested without waiting.
//
// A keyboard-wedge scanner beeps "good read" on its own as soon as it has
// decoded a symbol, long before the gateway has stored the scan, and the
// gateway cannot make it beep differently. Its beep therefore promises
// nothing; the durable verdict must reach the operator through the
// station's own indicator (light, display or sound), and Feedback writes
// nothing to a wedge scanner unless bytes are configured for it.
//
// # HID POS
//
// Better scanners also speak HID Point of Sale (usage page 0x8C, "HID
// Point of Sale Usage Tables" v1.02): each scan arrives as one or more
// 64-byte input reports carrying the decoded bytes, the AIM symbology
// identifier and a "continued" flag, so nothing depends on a keyboard
// layout, binary data survives, and the host can answer with its own
// good/bad beep (an output report) after the scan is stored. The exact
// byte layout, and the vendors that leave out the AIM identifier, are
// described at HIDPOSDecoder.
//
// # Devices and reopen
//
// A Scanner finds its device by a Match (vendor and product id, plus USB
// interface, serial number or port path), not by usage page: hidapi's
// libusb backend on Linux leaves UsagePage and Usage at zero. It reads
// with a finite timeout, because a hidapi device must never be closed while
// another goroutine is inside a read: the reading goroutine is the only one
// that closes it. A read error is how an unplug shows: the Scanner closes
// the device, reports itself disconnected and enumerates again with
// exponential, jittered backoff until its context ends, so a replugged or
// replaced scanner resumes without a restart.
//
// Reads are decoded on the reading goroutine and handed to the handler
// through a short queue: hidapi keeps at most 30 unread reports and drops
// the oldest beyond that, and a dropped key-up report would silently merge
// two equal characters of a wedge scan. A handler slow enough to fill the
// queue loses whole scans, counted as errors with reason "overrun", instead.
//
// # Builds without cgo
//
// karalabe/hid needs cgo; built with CGO_ENABLED=0 it is a stub that finds
// no devices. The gateway still builds, and a HID scanner then fails with
// ErrUnavailable, whose message says why, instead of waiting forever for a
// device it can never see (see Available).
package hidscan
