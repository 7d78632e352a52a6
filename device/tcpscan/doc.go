// Package tcpscan drives fixed industrial barcode readers that report over
// plain TCP: the Cognex DataMan, Keyence SR, SICK Lector/CLV, Datalogic
// Matrix and Zebra FS families of conveyor tunnels and dock portals. Each
// result is a frame in a byte stream, cut by the same device.Framer serial
// scanners use (a terminator, or STX … ETX, an optional prefix), then turned
// into codes and no-reads by device.Codes.
//
// # Two roles
//
// Readers differ in who opens the connection, so a Scanner takes either
// role, never both:
//
//   - Connect: the reader is a TCP server on its result port and the
//     gateway dials it. The gateway then knows where its readers are, and
//     redials a lost one with exponential backoff and full jitter, so the
//     readers of a tunnel that comes back after a power cut are not all
//     redialled in lockstep.
//   - Listen: the reader is the client and pushes results to a host it is
//     configured with; the gateway listens. One listener serves one reader,
//     so a frame is never attributed to the wrong scanner. A new connection
//     replaces the old one, which is closed: a reader that rebooted without
//     closing its connection reconnects at once, and the half-dead old
//     connection must not hold its place. Allow, when set, restricts the
//     peers that may connect.
//
// # Dead peers
//
// A TCP connection to a reader that lost power or its cable stays open on
// the gateway's side for as long as nothing is written. Every connection
// therefore has TCP keepalive on (first probe after 10 s of silence, then
// every 5 s, dropped after 3 unanswered: about 25 s), and IdleTimeout, when
// set, ends a connection that delivered no bytes for that long, for readers
// that send a heartbeat or scan often enough that silence means trouble.
// A partial frame never survives its connection: bytes from before a
// disconnect and bytes after it never make one scan.
//
// # Feedback
//
// The station's verdict is written back on the current connection (a
// reader's host-acknowledge or output-line command), with a write deadline
// so a reader that stopped reading cannot stall the station, and fails with
// device.ErrNotConnected while no reader is connected.
package tcpscan
