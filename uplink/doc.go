// Package uplink owns the MQTT session to the central broker: it connects
// (TLS, credentials), announces the gateway, publishes the durable queue in
// order, deleting a message only once the broker acknowledged it, reports
// the gateway's health, and takes commands and rule sets back.
//
// # Why not paho's own reconnect and session
//
// paho.mqtt.golang can report a publish token as complete after a reconnect
// without the message having been delivered (paho issues #563, #458, PR
// #565). So every connection is a fresh client with CleanSession=true and
// AutoReconnect=false: a token can then only succeed on a PUBACK received on
// the connection its PUBLISH went out on, and every token of a lost
// connection fails. The uplink reconnects by itself, on a backoff
// schedule at a random phase per outage (backoff.go: a broker restart must
// not meet a fleet in the same second), and after each reconnect resends everything still in the
// queue from its oldest unacknowledged message. Delivery is at least once;
// consumers deduplicate by event id.
//
// # The window
//
// Up to Inflight QoS 1 publishes are outstanding at once (paho has no limit
// of its own). They complete in FIFO order in the collector, which acks each
// to the queue; a failed token ends the session, and the next one resends.
//
// # Security and why a connection failed
//
// ssl:// and mqtts:// brokers are verified against Config.TLS.CAFile (or the
// system roots) and the broker's name; the check is never switched off. A
// client certificate makes it mutual TLS. The files are read at every
// attempt, so renewed certificates need no restart; [CheckLocal] reads them
// once at startup so that a missing or broken file stops the daemon with
// the setting named. Dates are judged per attempt instead: a certificate
// that expired (or a clock that is wrong) is reported with reason
// tls_expired without dialling, and the stations keep buffering.
//
// Each failed attempt is counted by reason in
// scangw_mqtt_connect_failures_total{reason} (see the Reason constants) and
// logged with a hint that says what to fix: the first failure, every change
// of reason, and then one line every five minutes. Under TLS 1.3 the
// client's handshake completes before the broker has judged the client
// certificate; a refusal arrives as an alert on the first read, waiting for
// CONNACK, and is classified from there (tls_bad_certificate, or
// tls_expired). The password (literal, file or environment variable) is
// never logged.
//
// # Poison messages
//
// An MQTT 3.1.1 broker disconnects a client that sends a packet over its
// size limit, and PUBACKs — then drops — a publish its ACL denies. Either
// would lose a scan or stall the queue forever. So:
//
//   - A queued message larger than Config.MaxPayload is never published.
//     It is not deleted either (the buffer's promise is that nothing
//     acknowledged to an operator is dropped): it stays in the buffer,
//     visible to `scangw buffer peek`, is logged loudly once and counted in
//     scangw_mqtt_poison_total, and the messages after it are published
//     (the buffer accepts acks out of order). Its station's order has a
//     hole where it sits, which the central side sees as a seq gap. Raising
//     mqtt.max_payload sends it at the next connection. The station caps a
//     scan's raw text (max_length, 4096 by default), so an encoded scan
//     stays far below the 64 KiB default. While it sits there the buffer's
//     depth never reaches zero, the backlog age in the heartbeat keeps
//     growing, and the buffer does not compact its queue.
//   - After each connect the uplink publishes a heartbeat as a probe (QoS
//     1, while subscribed to its own heartbeat topic) and waits for it to
//     come back. Until it does, nothing from the queue is published: scans
//     stay in the buffer instead of being PUBACKed into an ACL's void. The
//     probe is repeated at every heartbeat interval; the state is in
//     scangw_mqtt_publish_permitted, the heartbeat's publish_permitted and
//     the log. The gateway therefore needs read and write access to its
//     heartbeat topic. If the broker refuses the subscription itself, the
//     check cannot be made: the uplink says so and publishes anyway.
//
// # Two gateways with one id
//
// The birth carries a per-process instance id. The uplink subscribes to its
// own status topic before it announces itself, and once its own birth came
// back, any other instance's "online" there — or a second distinct status
// of other instances (two gateways with the same client id take the session
// from each other, and the broker then publishes each one's will) — means
// another process runs with this gateway's id. It is logged as an error and
// shown in scangw_mqtt_duplicate_gateway and the heartbeat. Statuses of
// other instances seen before the own birth are those of a predecessor on
// the same box and are ignored.
//
// # Downlink
//
// On each connection the uplink subscribes (QoS 1) to the gateway's cmd
// topic and to the site's and gateway's rules topics. paho's router only
// hands messages to a bounded queue (a full queue drops and counts); one
// goroutine owned by Run consumes it, so a slow station or rules engine
// never blocks the connection. Rules messages — retained, so they arrive
// again after every connect — go to Config.Rules. Commands are JSON
// objects:
//
//	{"v":1,"id":"<correlation id>","cmd":"set_mode","station":"dock-3","args":{"mode":"ship"},
//	 "to":"<site>/<gateway>","expires":"<RFC 3339>","sig":"<base64>"}
//
// Each gets one reply, an io.scangw.reply.v1 event on the reply topic with
// data {id, cmd, ok, error {code, message}, result}. Malformed, oversize,
// unsigned (when Config.CommandKeys is set), unknown or retained commands
// get an error reply and change nothing; see wire's Code constants. ping is
// answered here, resync_rules by subscribing to the rules topics again
// (the broker then resends the retained rule sets to Config.Rules;
// unsupported without one). status, set_mode and set_context have their
// args checked here and go to Config.Stations, resend to Config.Resender
// (no_audit_window where the buffer keeps no audit window). A repeated correlation id gets the first reply
// again without running the command twice (QoS 1 may deliver it twice).
//
// The signature covers [CanonicalCommand]. A signature proves who sent a
// command, not for whom or when, so a signed command must also name its
// gateway in "to" (wrong_target otherwise) and carry an "expires" at most
// 15 minutes ahead (expired otherwise; a minute more is allowed for
// clocks). Its id is remembered until then, across restarts when
// Config.State is set (it is saved before the command runs), so a copy
// taken off the broker runs neither on another gateway, nor later, nor
// twice (replayed). Commands are live, never retained, so a short
// validity costs nothing. Expiry is judged by the gateway's clock, which
// on a Pi before NTP may be off: a clock far behind refuses fresh
// commands as too long-lived and accepts ones that expired as long ago as
// it trails (each id still runs once); a clock far ahead refuses them as
// expired. The heartbeat's clock_synced says which to trust. Unsigned
// commands may carry "to" and "expires" and are then held to them.
package uplink
