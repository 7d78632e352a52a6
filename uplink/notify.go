package uplink

import (
	"context"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Live notices (a station's indicator: the verdict of each scan for a
// display or stack light) are published at QoS 0, not retained, and only
// while connected: they are for people watching now, not a record — the
// scan events are the record. A notice that finds no connection, or a full
// queue, is dropped and counted; it never delays a station.

// noticeQueue bounds the notices waiting for the session's publisher.
const noticeQueue = 64

type notice struct {
	topic   string
	payload []byte
}

// Notify queues a live notice on topic. It never blocks.
func (u *Uplink) Notify(topic string, payload []byte) {
	if !u.connected.Load() {
		u.m.noticesDropped.Inc()
		return
	}
	select {
	case u.notices <- notice{topic, payload}:
	default:
		u.m.noticesDropped.Inc()
	}
}

// notifier publishes queued notices on c until ctx ends.
func (u *Uplink) notifier(ctx context.Context, c mqtt.Client) {
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-u.notices:
			// QoS 0: paho completes the token once written; a dead link
			// ends the session, which ends this loop.
			if err := wait(ctx, c.Publish(n.topic, 0, false, n.payload), u.cfg.WriteTimeout); err != nil && ctx.Err() == nil {
				u.m.noticesDropped.Inc()
			}
		}
	}
}
