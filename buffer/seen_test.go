package buffer

import (
	"context"
	"testing"
	"time"
)

var t0ctx = context.Background()

func TestSeenIndexPersistsAndExpires(t *testing.T) {
	dir := t.TempDir()
	b, err := Open(Options{Dir: dir, SeenRetention: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_800_000_000, 0)
	if _, _, ok := b.Seen("09506000134352|SN1"); ok {
		t.Fatal("unknown key seen")
	}
	if err := b.Mark("09506000134352|SN1", "receive", at); err != nil {
		t.Fatal(err)
	}
	// Visible at once, before its commit.
	if mode, got, ok := b.Seen("09506000134352|SN1"); !ok || mode != "receive" || !got.Equal(at) {
		t.Fatalf("Seen = %q %v %v", mode, got, ok)
	}
	if err := b.Close(); err != nil { // Close commits pending marks
		t.Fatal(err)
	}

	b, err = Open(Options{Dir: dir, SeenRetention: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if mode, _, ok := b.Seen("09506000134352|SN1"); !ok || mode != "receive" {
		t.Fatalf("after reopen: %q %v", mode, ok)
	}
	b.Mark("09506000134352|SN1", "ship", at.Add(time.Hour))
	if mode, _, _ := b.Seen("09506000134352|SN1"); mode != "ship" {
		t.Fatalf("newer mark not seen: %q", mode)
	}
	// The retention bounds the index: the entry expires.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.flushMarksForTest()
		if _, _, ok := b.Seen("09506000134352|SN1"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("seen entry did not expire after its retention")
		}
		time.Sleep(50 * time.Millisecond) // polling Badger's TTL, a clock condition
	}
}

// flushMarksForTest commits pending marks through the committer.
func (b *Buffer) flushMarksForTest() {
	b.onCommitter(t0ctx, func() error { b.flushDeletes(); return nil })
}
