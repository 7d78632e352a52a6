// Package serialscan drives barcode scanners on serial lines: RS-232
// adapters and USB-CDC scanners that show up as /dev/ttyACM* or
// /dev/ttyUSB*, opened through go.bug.st/serial.
//
// # Framing
//
// A serial line is a byte stream with no notion of a scan. A scanner marks
// the end of each scan with a suffix it is configured to send (commonly CR,
// or CR LF), or wraps it in STX … ETX, and a device.Framer (shared with
// device/tcpscan) cuts the stream there. Reads carry no framing of
// their own, so a terminator may arrive split over two reads; the Framer
// carries partial state between them. Scan data may hold any byte,
// including control characters such as GS (0x1D) in GS1 data, so only the
// exact terminator ends a frame. A frame that exceeds the configured cap
// is discarded up to its terminator and reported once, as a Read with
// device.ErrOversize, so the operator gets one bad signal for one bad scan
// and memory stays bounded whatever the scanner sends. A complete frame
// then goes through device.Codes: a frame with several codes becomes
// several Reads, and a configured no-read text a Read marked NoRead.
//
// # Reopen
//
// Scanners get unplugged, USB hubs reset, and device nodes vanish and come
// back, sometimes under a udev symlink that now points elsewhere. A Scanner
// therefore treats every read error, hang-up or failed open as an outage:
// it closes the port, reports itself disconnected and reopens the path with
// exponential, jittered backoff until its context ends. It opens by path
// each time rather than holding on to a device, so a replaced scanner is
// picked up without a restart. A partial frame never survives a reopen,
// but input waiting in the kernel at open time is kept, since it may be a
// scan nobody has acknowledged yet.
//
// # Feedback
//
// The station tells the scanner its verdict only after the scan is stored.
// For a scanner in host-acknowledge mode that verdict is a byte sequence
// (ACK/NAK, or a vendor beep command) written back on the same line;
// Config.Feedback maps each device.Signal to those bytes. Feedback may be
// called from the Read handler or from any goroutine, and fails with
// device.ErrNotConnected while the port is down, so the station can show
// the verdict on its own indicator instead.
package serialscan
