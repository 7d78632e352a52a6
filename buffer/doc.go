// Package buffer is scangw's durable store: the queue of messages waiting
// for the broker, the gateway's event sequence, and the small state that
// must survive a reboot. It sits on Badger, tuned for a 1 GB board.
//
// The package owns these pieces, each in its file:
//
//   - the queue and the sequence (buffer.go): Append, Peek, Ack, and the
//     committer that writes them;
//   - the on-disk layout (format.go): keys, the metadata and its
//     migrations, and the encoding of an entry;
//   - state (state.go): small named values, such as a station's mode;
//   - the seen index (seen.go): the last mode each serial was scanned in;
//   - the audit window (audit.go): delivered messages kept for a while, so
//     that Resend can put a seq range back in the queue;
//   - healing (heal.go): moving a corrupt directory aside and salvaging
//     what it still holds;
//   - limits and maintenance (limits.go, maintain.go): refusing appends
//     when full, and giving disk space back.
//
// # The queue
//
// Every message is stored under its queue position (an 8-byte big-endian
// key), so Badger's key order is the send order. An appended event also gets
// the next event sequence number ("seq"), which goes inside its payload and,
// since entry encoding v2, into the entry itself (Entry.Seq), so that the
// buffer can find a seq range without reading payloads. Both counters are
// advanced in the same transaction that stores the message, so seq is
// gap-free across crashes: a message either committed with its number or the
// number was never used. (Badger's own GetSequence leases blocks of numbers
// and leaves gaps after a crash.) Salvaged and resent messages keep the seq
// and epoch they were born with and take only a queue position.
//
// An entry names its stream (Entry.Stream): whatever the appender called
// it. The buffer treats it as opaque.
//
// # Group commit
//
// One goroutine, the committer, owns all writes. Appends queue up while a
// commit is in flight and the next transaction takes them all, so one sync
// covers many scans; a lone scan is committed at once, without a timer.
// Deletes ride along in the same transactions. Append returns only after the
// sync that covers the message returned: that is what makes a good-read
// beep a promise.
//
// # Lifecycle
//
// Open starts the committer and Close stops it; Run does only maintenance.
// This departs from the usual Run(ctx) that owns every goroutine of its
// part, for two reasons. Tools and tests append, salvage and read without
// running maintenance. And the committer must outlive every user of the
// buffer: at shutdown the stations and the uplink may still append, ack or
// save state until their own Run returns, after the context ended. So the
// daemon closes the buffer only after its errgroup has returned (Close then
// commits the acknowledged deletes on the way out), while Run stops with
// the others. A read-only open starts no committer. The committer is the
// only goroutine the package starts, and Close waits for it to exit.
//
// # Never drop
//
// When the configured limits (messages, bytes, a free-disk floor) are
// reached, new appends are refused with ErrFull; nothing stored is ever
// dropped to make room.
//
// # Draining
//
// Peek reads in order from the lowest position that may still be present,
// which the buffer tracks in memory as deletes commit, so a drain never
// iterates over the tombstones of what it already deleted. Once the queue
// is empty and quiet, Run drops the queue's key range so that Badger gives
// the disk space back.
package buffer
