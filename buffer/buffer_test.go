package buffer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func open(t testing.TB, dir string, hook func([]uint64)) *Buffer {
	t.Helper()
	b, err := Open(Options{Dir: dir, OnCommit: hook})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func payload(s string) func(uint64) ([]byte, error) {
	return func(seq uint64) ([]byte, error) { return fmt.Appendf(nil, "%s#%d", s, seq), nil }
}

func appendN(t testing.TB, b *Buffer, n int, topic string) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		seq, err := b.Append(context.Background(), topic, payload(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestAppendPeekAck(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	seqs := appendN(t, b, 10, "t/a")
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seq[%d] = %d, want %d", i, s, i+1)
		}
	}
	if b.Depth() != 10 {
		t.Fatalf("depth %d", b.Depth())
	}
	es, err := b.Peek(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 10 || es[0].Stream != "t/a" || es[3].Seq != 4 || es[3].Epoch != b.Epoch() || string(es[3].Payload) != "3#4" || es[3].Pos != 4 {
		t.Fatalf("peek = %+v", es)
	}
	// Acked messages vanish from Peek at once, before their delete commits.
	b.Ack(1)
	b.Ack(2)
	b.Ack(5)
	es, _ = b.Peek(0, 100)
	if got := posOfAll(es); fmt.Sprint(got) != "[3 4 6 7 8 9 10]" {
		t.Fatalf("after ack: %v", got)
	}
	es, _ = b.Peek(7, 2)
	if got := posOfAll(es); fmt.Sprint(got) != "[7 8]" {
		t.Fatalf("peek from 7: %v", got)
	}
}

func posOfAll(es []Entry) []uint64 {
	var s []uint64
	for _, e := range es {
		s = append(s, e.Pos)
	}
	return s
}

func TestReopenKeepsSequenceAndBacklog(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	epoch := b.Epoch()
	appendN(t, b, 5, "t")
	for s := uint64(1); s <= 3; s++ {
		b.Ack(s)
	}
	// An append commits the queued deletes with it.
	appendN(t, b, 1, "t")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = open(t, dir, nil)
	if b.Epoch() != epoch {
		t.Fatalf("epoch changed on reopen: %s -> %s", epoch, b.Epoch())
	}
	if b.Depth() != 3 {
		t.Fatalf("depth after reopen = %d, want 3", b.Depth())
	}
	es, _ := b.Peek(0, 10)
	if got := posOfAll(es); fmt.Sprint(got) != "[4 5 6]" {
		t.Fatalf("backlog after reopen: %v", got)
	}
	if s := appendN(t, b, 1, "t")[0]; s != 7 {
		t.Fatalf("seq after reopen = %d, want 7", s)
	}
}

func TestBuildErrorUsesNoSequence(t *testing.T) {
	b := open(t, t.TempDir(), nil)
	appendN(t, b, 1, "t")
	_, err := b.Append(context.Background(), "t", func(uint64) ([]byte, error) { return nil, errors.New("boom") })
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
	if s := appendN(t, b, 1, "t")[0]; s != 2 {
		t.Fatalf("seq after failed build = %d, want 2", s)
	}
}

// TestGroupCommit holds the first commit in its hook until every other
// appender is queued, and checks that one commit then takes them all.
func TestGroupCommit(t *testing.T) {
	const n = 64
	release := make(chan struct{})
	var mu sync.Mutex
	var commits [][]uint64
	first := true
	var b *Buffer
	b = open(t, t.TempDir(), func(seqs []uint64) {
		mu.Lock()
		commits = append(commits, seqs)
		wait := first
		first = false
		mu.Unlock()
		if wait {
			<-release
		}
	})
	var wg sync.WaitGroup
	results := make(chan uint64, n)
	appendOne := func() {
		defer wg.Done()
		s, err := b.Append(context.Background(), "t", payload("x"))
		if err != nil {
			t.Error(err)
		}
		results <- s
	}
	wg.Add(1)
	go appendOne()
	// Wait until the committer is inside the first commit's hook.
	for {
		mu.Lock()
		c := len(commits)
		mu.Unlock()
		if c == 1 {
			break
		}
		runtimeYield()
	}
	wg.Add(n - 1)
	for range n - 1 {
		go appendOne()
	}
	for len(b.reqs) < n-1 {
		runtimeYield()
	}
	close(release)
	wg.Wait()
	close(results)
	seen := map[uint64]bool{}
	for s := range results {
		seen[s] = true
	}
	for s := uint64(1); s <= n; s++ {
		if !seen[s] {
			t.Fatalf("seq %d missing: %v", s, seen)
		}
	}
	if len(commits) != 2 || len(commits[1]) != n-1 {
		t.Fatalf("commits = %d (sizes %v), want 2 with %d in the second", len(commits), sizes(commits), n-1)
	}
}

func sizes(cs [][]uint64) []int {
	var s []int
	for _, c := range cs {
		s = append(s, len(c))
	}
	return s
}

func TestNewerFormatRefused(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	db, err := badger.Open(badgerOptions(dir, b.log))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return putUint(txn, keyFormat, FormatVersion+1) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(Options{Dir: dir})
	if !errors.Is(err, ErrNewerFormat) || IsCorrupt(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestClosed(t *testing.T) {
	b, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := b.Append(context.Background(), "t", payload("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

func TestDecodeEntryRejectsGarbage(t *testing.T) {
	for _, v := range [][]byte{
		nil, {1}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 50, 'a'},
		{3, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{2, 0, 0, 0, 0, 0, 0, 0, 0},                 // no seq
		{2, 0, 0, 0, 0, 0, 0, 0, 0, 0x80},           // seq cut
		{2, 0, 0, 0, 0, 0, 0, 0, 0, 5, 3, 'a', 'b'}, // epoch cut
		{2, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0},           // no stream length
		{2, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 9, 'a'},   // stream cut
		{2, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // epoch length overflows
	} {
		if _, err := decodeEntry(1, v, "holder"); err == nil {
			t.Errorf("decodeEntry(%v) accepted", v)
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntryV1(time.Unix(1, 2), "a/b", []byte("{}")))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Add(encodeEntry(time.Unix(1, 2), 42, "", "scans/dock-1", []byte("{}")))
	f.Add(encodeEntry(time.Unix(1, 2), 42, "other", "scans/dock-1", nil))
	f.Add(encodeEntry(time.Unix(1, 2), 0, "", "t", []byte("x")))
	f.Fuzz(func(t *testing.T, v []byte) {
		e, err := decodeEntry(7, v, "holder")
		if err != nil {
			return
		}
		if (e.Seq == 0) != (e.Epoch == "") {
			t.Fatalf("%x decodes to seq %d in epoch %q: a seq is known exactly with its epoch", v, e.Seq, e.Epoch)
		}
		e2, err := decodeEntry(7, encodeEntry(e.Time, e.Seq, e.Epoch, e.Stream, e.Payload), "another")
		if err != nil || e2.Stream != e.Stream || string(e2.Payload) != string(e.Payload) || !e2.Time.Equal(e.Time) ||
			e2.Seq != e.Seq || e2.Epoch != e.Epoch {
			t.Fatalf("round trip of %x: %+v -> %+v, %v", v, e, e2, err)
		}
	})
}

func runtimeYield() { runtime.Gosched() }
