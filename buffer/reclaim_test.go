package buffer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// settled waits until every ack has been committed.
func settled(t testing.TB, b *Buffer) {
	t.Helper()
	waitFor(t, 10*time.Second, "acks to commit", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pendingDel) == 0
	})
}

// TestReclaimGivesSpaceBack drains a large backlog and checks that Reclaim
// returns the disk space, and that the queue goes on after it (and after a
// reopen) with the next seq and position.
func TestReclaimGivesSpaceBack(t *testing.T) {
	t.Parallel() // slow, and much of it waiting: overlap with the other slow tests
	const n = 200_000
	dir := t.TempDir()
	b, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	start := time.Now()
	appendConcurrently(t, b, n, 256, func(uint64) int { return 300 })
	peak := dirSize(dir)
	t.Logf("appended %d x 300 B in %v: %.1f MiB on disk", n, time.Since(start).Round(time.Millisecond), mib(peak))
	if b.Depth() != n {
		t.Fatalf("depth %d, want %d", b.Depth(), n)
	}

	// Drain the way the uplink does, then commit the last deletes with
	// one more append that is acked too.
	var cursor uint64
	drained := 0
	for {
		es, err := b.Peek(cursor, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			b.Ack(e.Pos)
			cursor = e.Pos + 1
			drained++
		}
		if drained%(n/4) < 1024 {
			peak = max(peak, dirSize(dir))
		}
	}
	if drained != n {
		t.Fatalf("drained %d, want %d", drained, n)
	}
	seq, err := b.Append(context.Background(), "t", payload("last"))
	if err != nil || seq != n+1 {
		t.Fatalf("append after drain: seq %d, %v", seq, err)
	}
	b.Ack(n + 1) // pos == seq: nothing was salvaged into this buffer
	settled(t, b)
	if b.Depth() != 0 {
		t.Fatalf("depth %d after draining", b.Depth())
	}
	before := dirSize(dir)
	peak = max(peak, before)

	start = time.Now()
	dropped, err := b.Reclaim(context.Background())
	if err != nil || !dropped {
		t.Fatalf("Reclaim = %v, %v; want true", dropped, err)
	}
	after := dirSize(dir)
	t.Logf("reclaim took %v: peak %.1f MiB, before reclaim %.1f MiB, after %.1f MiB (%d bytes:%s)",
		time.Since(start).Round(time.Millisecond), mib(peak), mib(before), mib(after), after, fileSizes(dir))
	// What stays: the metadata keys' table, the manifest, and the log
	// files' headers (sparse files count by allocated blocks).
	if after > peak/10 {
		t.Errorf("after reclaim %.1f MiB on disk, more than 10%% of the peak %.1f MiB", mib(after), mib(peak))
	}
	if d := b.Depth(); d != 0 {
		t.Errorf("depth %d after reclaim", d)
	}
	if es := peekAll(t, b); len(es) != 0 {
		t.Errorf("after reclaim the queue holds %d entries, first at %d", len(es), es[0].Pos)
	}
	if dropped, err := b.Reclaim(context.Background()); dropped || err != nil {
		t.Errorf("second Reclaim with nothing appended = %v, %v; want false, nil", dropped, err)
	}

	// The queue and the sequence go on.
	seq, err = b.Append(context.Background(), "t", payload("next"))
	if err != nil || seq != n+2 {
		t.Fatalf("append after reclaim: seq %d, %v; want %d", seq, err, n+2)
	}
	if es := peekAll(t, b); len(es) != 1 || es[0].Pos != n+2 || string(es[0].Payload) != fmt.Sprintf("next#%d", n+2) {
		t.Fatalf("after reclaim and append: %+v", es)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if d := b.Depth(); d != 1 {
		t.Errorf("depth after reopen %d, want 1", d)
	}
	if es := peekAll(t, b); len(es) != 1 || es[0].Pos != n+2 {
		t.Errorf("after reopen: %+v", es)
	}
	if s := b.NextSeq(); s != n+3 {
		t.Errorf("next seq after reopen %d, want %d", s, n+3)
	}
}

// TestReclaimKeepsWaitingMessages: Reclaim does nothing while a message
// waits, even one appended after everything before it was acked.
func TestReclaimKeepsWaitingMessages(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	appendN(t, b, 10, "t")
	for pos := uint64(1); pos <= 9; pos++ {
		b.Ack(pos)
	}
	settled(t, b)
	if dropped, err := b.Reclaim(context.Background()); dropped || err != nil {
		t.Fatalf("Reclaim with one waiting = %v, %v", dropped, err)
	}
	if es := peekAll(t, b); len(es) != 1 || es[0].Pos != 10 || string(es[0].Payload) != "9#10" {
		t.Fatalf("queue after Reclaim: %+v", es)
	}
}

// TestAckTwice: an Ack repeated after its delete committed must not count
// the message twice. If it did, the depth would reach 0 while a message
// still waits, and Reclaim would drop that message.
func TestAckTwice(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	appendN(t, b, 3, "t")
	// Position 2, not 1: an ack of a position below every waiting one is
	// ignored anyway.
	b.Ack(2)
	settled(t, b)
	b.Ack(2) // a late duplicate: its delete is already committed
	settled(t, b)
	if d := b.Depth(); d != 2 {
		t.Fatalf("depth after a repeated ack = %d, want 2", d)
	}
	appendN(t, b, 1, "t")
	b.Ack(1)
	b.Ack(3)
	settled(t, b)
	if d := b.Depth(); d != 1 {
		t.Fatalf("depth = %d, want 1", d)
	}
	if dropped, err := b.Reclaim(context.Background()); dropped || err != nil {
		t.Fatalf("Reclaim with one waiting = %v, %v", dropped, err)
	}
	if es := peekAll(t, b); len(es) != 1 || es[0].Pos != 4 {
		t.Fatalf("queue = %+v, want position 4 only", es)
	}
}

// TestReclaimMarkerInvisible: the marker Reclaim stores at position 0 for
// Badger's DropPrefix to act never shows as a message, even if a crash left
// it behind.
func TestReclaimMarkerInvisible(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, b, 2, "t")
	// As if a crash came between the marker and the drop.
	if err := b.db.Update(func(txn *badger.Txn) error { return txn.Set(queueKey(0), nil) }); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = open(t, dir, nil)
	if d := b.Depth(); d != 2 {
		t.Errorf("depth %d, want 2", d)
	}
	if es := peekAll(t, b); len(es) != 2 || es[0].Pos != 1 {
		t.Errorf("queue = %+v", es)
	}
	b.Ack(1)
	b.Ack(2)
	settled(t, b)
	if dropped, err := b.Reclaim(context.Background()); !dropped || err != nil {
		t.Fatalf("Reclaim = %v, %v", dropped, err)
	}
	if s, _ := b.Append(context.Background(), "t", payload("x")); s != 3 {
		t.Fatalf("seq %d, want 3", s)
	}
	if es := peekAll(t, b); len(es) != 1 || es[0].Pos != 3 {
		t.Errorf("queue = %+v", es)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// fileSizes lists a directory's files for a failure message.
func fileSizes(dir string) string {
	ents, _ := os.ReadDir(dir)
	s := ""
	for _, e := range ents {
		if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
			s += fmt.Sprintf(" %s=%d", e.Name(), fi.Size())
		}
	}
	return s
}
