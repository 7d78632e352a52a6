package uplink

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/scangw/scangw/station/wire"
)

// memQueue is a working in-memory Queue and Backlog: the buffer without
// the disk. Appends get the next queue position and seq, both from 1, in
// one step, as the buffer's committer gives them; acks may come in any
// order, and an ack of a position that is not waiting (never appended,
// acked before) changes nothing. It is safe for concurrent use.
//
// It survives an Uplink's restart (a new Uplink on the same memQueue), not
// the process: tests whose point is that nothing acknowledged is lost on
// disk use the real buffer (bufferQueue).
type memQueue struct {
	epoch    string
	appended chan struct{} // one slot, like the buffer's: one reader

	mu  sync.Mutex
	now func() time.Time // the clock of append times
	// msgs holds the messages by position from the oldest waiting one
	// (msgs[head]) on; acked ones after it stay as tombstones until the
	// head passes them, so that an ack costs no copying.
	msgs    []memMsg
	head    int
	depth   int
	nextPos uint64
	nextSeq uint64
}

type memMsg struct {
	Message
	acked bool
}

func newMemQueue() *memQueue {
	return &memQueue{
		epoch:    "mem-" + wire.NewID(),
		appended: make(chan struct{}, 1),
		now:      time.Now,
		nextPos:  1,
		nextSeq:  1,
	}
}

// setClock makes now the clock of later appends' times.
func (q *memQueue) setClock(now func() time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.now = now
}

// Append stores a message under stream and returns its seq. build makes
// the payload once the seq is known; if it fails nothing is stored and
// no seq is used.
func (q *memQueue) Append(ctx context.Context, stream string, build func(seq uint64) ([]byte, error)) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	q.mu.Lock()
	seq := q.nextSeq
	p, err := build(seq)
	if err != nil {
		q.mu.Unlock()
		return 0, fmt.Errorf("encode: %w", err)
	}
	q.msgs = append(q.msgs, memMsg{Message: Message{Pos: q.nextPos, Time: q.now(), Stream: stream, Payload: slices.Clone(p)}})
	q.depth++
	q.nextPos++
	q.nextSeq++
	q.mu.Unlock()
	select {
	case q.appended <- struct{}{}:
	default:
	}
	return seq, nil
}

// Peek returns up to max waiting messages from position from on.
func (q *memQueue) Peek(from uint64, max int) ([]Message, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]Message, 0, min(max, q.depth))
	for _, m := range q.msgs[q.find(from):] {
		if len(out) == max {
			break
		}
		if m.acked {
			continue
		}
		m.Payload = slices.Clone(m.Payload) // the caller's to keep
		out = append(out, m.Message)
	}
	return out, nil
}

// Ack deletes the message at pos, if one waits there.
func (q *memQueue) Ack(pos uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := q.find(pos)
	if i == len(q.msgs) || q.msgs[i].Pos != pos || q.msgs[i].acked {
		return
	}
	q.msgs[i].acked = true
	q.msgs[i].Payload = nil
	q.depth--
	for q.head < len(q.msgs) && q.msgs[q.head].acked {
		q.head++
	}
	// Drop the acked prefix once it is most of the slice: amortised, each
	// message is copied at most once.
	if q.head > 1024 && q.head > len(q.msgs)/2 {
		q.msgs = append(q.msgs[:0], q.msgs[q.head:]...)
		q.head = 0
	}
}

// find returns the index of the first kept message at or after pos.
func (q *memQueue) find(pos uint64) int {
	i, _ := slices.BinarySearchFunc(q.msgs[q.head:], pos, func(m memMsg, pos uint64) int {
		switch {
		case m.Pos < pos:
			return -1
		case m.Pos > pos:
			return 1
		}
		return 0
	})
	return q.head + i
}

func (q *memQueue) Appended() <-chan struct{} { return q.appended }

func (q *memQueue) Depth() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(q.depth)
}

func (q *memQueue) Oldest() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.msgs) {
		return time.Time{}, false
	}
	return q.msgs[q.head].Time, true
}

func (q *memQueue) Epoch() string { return q.epoch }

func (q *memQueue) NextSeq() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.nextSeq
}

var (
	_ testQueue = (*memQueue)(nil)
	_ testQueue = bufferQueue{}
)

// TestMemQueue holds the fake to what the uplink relies on from the
// buffer: order, acks in any order, harmless unknown and repeated acks,
// the backlog figures, and the append signal.
func TestMemQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := newMemQueue()
	if q.Depth() != 0 || q.NextSeq() != 1 || q.Epoch() == "" {
		t.Fatalf("empty queue: depth %d, next seq %d, epoch %q; want 0, 1, an epoch", q.Depth(), q.NextSeq(), q.Epoch())
	}
	if _, ok := q.Oldest(); ok {
		t.Error("Oldest of an empty queue reports a message")
	}
	if es, err := q.Peek(0, 10); err != nil || len(es) != 0 {
		t.Errorf("Peek of an empty queue = %v, %v", es, err)
	}
	select {
	case <-q.Appended():
		t.Fatal("Appended signalled before any append")
	default:
	}

	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var ticks atomic.Int64
	q.setClock(func() time.Time { return t0.Add(time.Duration(ticks.Add(1)) * time.Second) })
	for i := range 5 {
		seq, err := q.Append(ctx, wire.ScanStream("s1"), func(seq uint64) ([]byte, error) { return fmt.Appendf(nil, "m%d", seq), nil })
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("append %d: seq %d, %v; want %d", i, seq, err, i+1)
		}
	}
	select {
	case <-q.Appended():
	default:
		t.Fatal("Appended not signalled after appends")
	}
	// A payload that does not build stores nothing and uses no seq.
	if _, err := q.Append(ctx, "x", func(uint64) ([]byte, error) { return nil, errors.New("boom") }); err == nil {
		t.Error("append with a failing build succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := q.Append(cancelled, "x", func(uint64) ([]byte, error) { return []byte("y"), nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("append with a cancelled ctx: %v, want context.Canceled", err)
	}
	if q.Depth() != 5 || q.NextSeq() != 6 {
		t.Fatalf("after 5 appends and 2 refused: depth %d, next seq %d; want 5, 6", q.Depth(), q.NextSeq())
	}
	if at, ok := q.Oldest(); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Errorf("Oldest = %v, %v; want the first append's time %v", at, ok, t0.Add(time.Second))
	}

	es, err := q.Peek(0, 3)
	if err != nil || len(es) != 3 || es[0].Pos != 1 || es[2].Pos != 3 || string(es[1].Payload) != "m2" || es[1].Stream != "scans/s1" {
		t.Fatalf("Peek(0, 3) = %+v, %v; want positions 1..3, m2 at 2 on scans/s1", es, err)
	}
	es[0].Payload[0] = 'X' // the caller's copy
	if es, _ := q.Peek(1, 1); string(es[0].Payload) != "m1" {
		t.Errorf("a caller changing a peeked payload changed the queue: %q", es[0].Payload)
	}

	// Out of order, unknown, and repeated acks.
	q.Ack(3)
	q.Ack(0)
	q.Ack(99)
	q.Ack(3)
	if es, _ := q.Peek(2, 10); q.Depth() != 4 || len(es) != 3 || es[0].Pos != 2 || es[1].Pos != 4 || es[2].Pos != 5 {
		t.Errorf("after Ack(3) and bogus acks: depth %d, Peek(2, 10) = %+v; want 4, positions 2, 4, 5", q.Depth(), es)
	}
	q.Ack(1)
	if at, ok := q.Oldest(); !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Errorf("Oldest after acking the first = %v, %v; want the second's time", at, ok)
	}
	for pos := uint64(1); pos <= 5; pos++ {
		q.Ack(pos)
	}
	if es, _ := q.Peek(0, 10); q.Depth() != 0 || len(es) != 0 {
		t.Errorf("all acked: depth %d, Peek = %+v", q.Depth(), es)
	}
	if seq, err := q.Append(ctx, "x", func(uint64) ([]byte, error) { return nil, nil }); err != nil || seq != 6 {
		t.Errorf("append after draining: seq %d, %v; want 6 (seq never restarts)", seq, err)
	}
	q.Ack(6)

	// Many acks out of order, past the point where acked messages are
	// dropped from memory: odd positions first, then all but the last
	// even one.
	const n = 5000
	mustAppend(t, q, n) // positions 7..5006
	first, last := uint64(7), uint64(n+6)
	for pos := first; pos <= last; pos += 2 {
		q.Ack(pos)
	}
	if es, _ := q.Peek(0, 3); q.Depth() != n/2 || len(es) != 3 || es[0].Pos != first+1 || es[2].Pos != first+5 {
		t.Fatalf("odd positions acked: depth %d, Peek(0, 3) = %v; want %d, positions %d, %d, %d", q.Depth(), es, n/2, first+1, first+3, first+5)
	}
	for pos := first + 1; pos < last; pos += 2 {
		q.Ack(pos)
	}
	es, _ = q.Peek(0, 10)
	if at, ok := q.Oldest(); q.Depth() != 1 || len(es) != 1 || es[0].Pos != last || !ok || !at.Equal(es[0].Time) {
		t.Fatalf("all but %d acked: depth %d, Peek = %v, Oldest %v %v", last, q.Depth(), es, at, ok)
	}
	if es, _ := q.Peek(last+1, 10); len(es) != 0 {
		t.Errorf("Peek past the last position = %v", es)
	}
	q.Ack(last)
	q.Ack(first) // long gone
	if es, _ := q.Peek(0, 10); q.Depth() != 0 || len(es) != 0 {
		t.Errorf("all acked: depth %d, Peek = %v", q.Depth(), es)
	}
}

// TestMemQueueConcurrent appends from many goroutines while a reader acks
// what it peeks, as the uplink on a fast broker does: every seq is used
// once, queue order is seq order, nothing is lost, and the queue drains.
func TestMemQueueConcurrent(t *testing.T) {
	t.Parallel()
	const total = 5000
	q := newMemQueue()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	appendDone := make(chan error, 1)
	go func() {
		g, ctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for range total {
			g.Go(func() error {
				_, err := q.Append(ctx, wire.ScanStream("s1"), scanPayload(0))
				return err
			})
		}
		appendDone <- g.Wait()
	}()

	var got []uint64
	var read atomic.Int64 // len(got), for the timeout message
	var lastPos uint64
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		var cursor uint64
		for len(got) < total {
			es, err := q.Peek(cursor, 50)
			if err != nil {
				errs <- err
				return
			}
			if len(es) == 0 {
				select {
				case <-q.Appended():
				case <-ctx.Done():
					return
				}
				continue
			}
			for _, e := range es {
				seq, err := seqOf(e.Payload)
				if err != nil || e.Pos <= lastPos {
					errs <- fmt.Errorf("position %d after %d (payload %q, %v)", e.Pos, lastPos, e.Payload, err)
					return
				}
				lastPos = e.Pos
				got = append(got, seq)
				read.Add(1)
				q.Ack(e.Pos)
				q.Ack(e.Pos) // harmless
				cursor = e.Pos + 1
			}
		}
	}()
	if err := <-appendDone; err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case err := <-errs:
		if err != nil {
			t.Fatal(err)
		}
	case <-timer.C:
		t.Fatalf("the reader got %d of %d messages", read.Load(), total)
	}
	for i, seq := range got {
		if seq != uint64(i+1) {
			t.Fatalf("message %d in queue order has seq %d, want %d", i, seq, i+1)
		}
	}
	if q.Depth() != 0 || q.NextSeq() != total+1 {
		t.Errorf("depth %d, next seq %d; want 0, %d", q.Depth(), q.NextSeq(), total+1)
	}
}
