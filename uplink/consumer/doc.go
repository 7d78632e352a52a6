// Package consumer is the central side of scangw's wire contract (README,
// "Wire contract"): a client a central system embeds, or copies, to read
// every gateway's events exactly once and to notice — and repair — what
// went missing on the way.
//
// # What the gateway promises, and what is left to the central side
//
// A gateway publishes every buffered event (scans on scans/<station>,
// other station events on events/<station>) at QoS 1 and deletes it only
// on the broker's PUBACK. Delivery is therefore at least once: after a
// reconnect the gateway sends again whatever it had not seen acknowledged,
// and a "resend" sends delivered events again. Each event carries
// data.seq, gap-free per gateway within data.epoch and counted over both
// streams together, and an id made at scan time. So the central side has
// two jobs the gateway cannot do for it:
//
//   - drop duplicates. An event id belongs to exactly one (gateway, epoch,
//     seq), so once seq is tracked the dedupe is exact and needs no table
//     of ids: an event whose seq already arrived is a duplicate. A
//     Consumer keeps, per gateway and epoch, the seqs that arrived as a
//     short list of ranges — one range when nothing is missing — so a
//     consumer running for months holds a record of fixed size per
//     gateway, not a set of every id it ever saw.
//   - notice loss. A broker that acknowledged a message and then lost it
//     (a crash between autosaves, a queue limit, an ACL that PUBACKs and
//     drops), or a consumer session that expired, leaves a hole in seq
//     that no retry of the gateway will fill: the gateway deleted the
//     message when it got the PUBACK. The Consumer reports the hole as a
//     Gap (OnGap, GapOpen) as soon as a later seq shows it.
//
// # Repairing a gap
//
// A gateway with buffer.audit_window keeps delivered events that long.
// With Config.SignKey set, a gap still open after Config.ResendAfter (time
// for events merely delivered out of order to arrive) is asked for: a
// "resend" command {"from", "to", "epoch"} on the gateway's cmd topic, at
// QoS 1, addressed to the gateway, valid for a few minutes and signed with
// the key, whose public half the gateway lists in mqtt.command_keys
// (uplink.AddressCommand signs it exactly as `scangw command sign` does).
// The gateway puts those events back in its queue unchanged — same id,
// seq and epoch — and they arrive like any other. The Consumer reads the
// gateway's reply (on its reply topic, matched by command id):
//
//   - "requeued": N > 0 — they are on their way, behind whatever the
//     gateway still has queued; it is not asked again before
//     Config.ResendMax, since asking again would only queue more copies.
//   - "requeued": 0, no_audit_window or unsupported — the gateway cannot
//     send them: the gap is reported lost (GapLost). It stays on record,
//     so an event of it that turns up after all is still delivered, once.
//   - any other error (bad_signature, wrong_target, expired …) is logged
//     with its code: it is a configuration problem to fix, and the gap is
//     asked for again with a doubling interval up to ResendMax.
//
// No reply (the gateway is offline; commands are live and are not queued
// for it) also means asking again, with the same backoff, and at once when
// the gateway's next birth shows it back online. A gap closes (GapClosed)
// when its last missing seq arrives, whether by resend or late.
//
// # Where counting starts, and epochs
//
// A gateway the Consumer has never seen is counted from the first event
// it sees of it: a consumer started against a running fleet must not
// report every earlier event as lost. A new epoch of a gateway it already
// knows (seen in the gateway's status or in an event) began afresh at seq
// 1, and is counted from there; it is reported through OnEpoch. Events of
// an older epoch that arrive later (a gateway that salvaged a damaged
// buffer sends them with their old epoch and seq) are tracked on their
// own. The Consumer reads the gateway's retained status for its epoch.
//
// # Restarts and bounded memory
//
// The broker keeps the Consumer's session (a fixed ClientID, clean
// session off, QoS 1), so events published while it is down are delivered
// when it is back, and an event is acknowledged to the broker only after
// OnEvent returned: a consumer that crashes inside OnEvent gets it again.
// Its tracking lives in memory: after a restart it counts each gateway
// afresh from the first event it sees. Everything it keeps is bounded:
// 4 epochs per gateway, 50,000 gateways (the least recently heard from is
// forgotten first), and 1,024 ranges per epoch — past that the oldest gap
// is given up and reported lost. A gap-free gateway costs about 135 bytes
// however many events it sent (BenchmarkTrackerFleet).
//
// # Shared subscriptions
//
// With Config.Shared the Consumer subscribes as a member of a
// $share/<group>/ subscription (Mosquitto 2, EMQX, HiveMQ, VerneMQ), and
// the broker splits the events among the group's members. No member then
// sees all of a gateway's seqs, so none can tell a gap from an event that
// went to another member: a shared Consumer hands every event to OnEvent,
// duplicates included, and does no seq tracking. The store the members
// write to must drop duplicates by id and check seq there.
package consumer
