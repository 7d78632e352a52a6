package uplink

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestQueueAckWhatPeekReturned checks the contract the uplink relies on
// from the real buffer: whatever Peek returned can be acked, and an acked
// message is deleted. The uplink resends unacked messages only after a
// reconnect, so an ack the buffer drops leaves the message stuck in the
// queue for as long as the session lasts. A reader that acks at once what
// it peeks, while appends commit, is the uplink on a fast broker.
func TestQueueAckWhatPeekReturned(t *testing.T) {
	t.Parallel()
	const total = 3000
	buf := openBuffer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	appendDone := make(chan error, 1)
	go func() { appendDone <- appendScans(ctx, buf, total, 1, 0) }()

	var acked atomic.Int64
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var cursor uint64
		for acked.Load() < total && ctx.Err() == nil {
			es, err := buf.Peek(cursor, 20)
			if err != nil {
				t.Errorf("peek: %v", err)
				return
			}
			for _, e := range es {
				buf.Ack(e.Pos)
				acked.Add(1)
				cursor = e.Pos + 1
			}
		}
	}()
	if err := <-appendDone; err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "every message to be peeked and acked", func() bool { return acked.Load() >= total })
	<-readerDone
	drained(t, buf, 5*time.Second)
}
