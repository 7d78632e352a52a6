package uplink

import (
	"context"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// noticeQueue bounds the notices waiting for the session's publisher.
const noticeQueue = 64

// Notices carries live notices (a station's indicator: the outcome of each
// read, for a display or stack light) from the stations to the uplink. It
// is made before either, so neither needs the other to exist. Notices are
// published at QoS 0, not retained, and only while connected: they are for
// people watching now, not a record — the scan events are the record. A
// notice that finds no connection, or a full queue, is dropped and
// counted (scangw_mqtt_notices_dropped_total); it never delays a station.
type Notices struct {
	ch      chan notice
	open    atomic.Bool // a session publishes them
	dropped atomic.Uint64
}

type notice struct {
	stream  string
	payload []byte
}

// NewNotices makes an empty notice queue.
func NewNotices() *Notices { return &Notices{ch: make(chan notice, noticeQueue)} }

// Notify queues a notice of stream (wire.IndicatorStream). It never
// blocks.
func (n *Notices) Notify(stream string, payload []byte) {
	if !n.open.Load() {
		n.dropped.Add(1)
		return
	}
	select {
	case n.ch <- notice{stream, payload}:
	default:
		n.dropped.Add(1)
	}
}

// notifier publishes queued notices on c until ctx ends.
func (u *Uplink) notifier(ctx context.Context, c mqtt.Client) {
	n := u.cfg.Notices
	n.open.Store(true)
	defer n.open.Store(false)
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-n.ch:
			// QoS 0: paho completes the token once written; a dead link
			// ends the session, which ends this loop.
			if err := wait(ctx, c.Publish(u.topics.Of(m.stream), 0, false, m.payload), u.cfg.WriteTimeout); err != nil && ctx.Err() == nil {
				n.dropped.Add(1)
			}
		}
	}
}
