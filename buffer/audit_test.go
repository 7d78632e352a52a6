package buffer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuditWindowRequeue(t *testing.T) {
	ctx := context.Background()
	b, err := Open(Options{Dir: t.TempDir(), AuditWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	appendN(t, b, 5, "t") // payloads "i#seq"
	for pos := uint64(1); pos <= 3; pos++ {
		b.Ack(pos)
	}
	appendN(t, b, 1, "t") // commits the deletes, and their audit copies
	// The central side detected a gap from seq 2: put 2 and 3 back.
	n, err := b.requeue(ctx, func(e Entry) bool {
		var i, seq int
		fmt.Sscanf(string(e.Payload), "%d#%d", &i, &seq)
		return seq >= 2
	})
	if err != nil || n != 2 {
		t.Fatalf("Requeue = %d, %v; want 2", n, err)
	}
	es, _ := b.Peek(0, 10)
	var got []string
	for _, e := range es {
		got = append(got, string(e.Payload))
	}
	if want := "3#4 4#5 0#6 1#2 2#3"; strings.Join(got, " ") != want {
		t.Fatalf("queue after requeue: %q, want %q (unchanged payloads at the end)", strings.Join(got, " "), want)
	}

	plain, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.requeue(ctx, func(Entry) bool { return true }); !errors.Is(err, ErrNoAuditWindow) {
		t.Fatalf("Requeue without a window: %v", err)
	}
}

// TestAuditWindowManyDeletes acks a backlog far larger than what one
// transaction can hold with audit copies, and checks that scans keep being
// stored and the backlog drains.
func TestAuditWindowManyDeletes(t *testing.T) {
	ctx := context.Background()
	b, err := Open(Options{Dir: t.TempDir(), AuditWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	big := func(uint64) ([]byte, error) { return make([]byte, 900), nil } // just under the value threshold
	for range 6000 {
		if _, err := b.Append(ctx, "t", big); err != nil {
			t.Fatal(err)
		}
	}
	for pos := uint64(1); pos <= 6000; pos++ {
		b.Ack(pos)
	}
	// Each append commits with a share of the deletes; none may fail.
	for i := 0; b.Depth() > 1; i++ {
		if _, err := b.Append(ctx, "t", big); err != nil {
			t.Fatalf("append %d with %d deletes pending: %v", i, b.Depth(), err)
		}
		es, err := b.Peek(0, 1)
		if err != nil {
			t.Fatal(err)
		}
		b.Ack(es[0].Pos)
		if i > 10000 {
			t.Fatalf("backlog does not drain: depth %d", b.Depth())
		}
	}
	n, err := b.requeue(ctx, func(Entry) bool { return true })
	if err != nil || n < 6000 {
		t.Fatalf("Requeue = %d, %v; want every delivered message back", n, err)
	}
}

// TestResend fills an audit window with messages of three kinds: v1
// entries written before the upgrade (their seq unknown), messages born
// here (seqs 4..8), and messages salvaged from another buffer (seqs 1..3
// of its epoch). Each case resends a range and checks what came back.
func TestResend(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	// The other buffer, whose messages are salvaged.
	src := filepath.Join(t.TempDir(), "src")
	s, err := Open(Options{Dir: src})
	if err != nil {
		t.Fatal(err)
	}
	other := s.Epoch()
	for i := range 3 {
		if _, err := s.Append(ctx, "scans/src", payload(fmt.Sprint("src", i))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	// This buffer: written by an older scangw (seqs 1..3 in v1 entries),
	// then upgraded.
	dir := filepath.Join(t.TempDir(), "buffer")
	writeFormat1(t, dir, 3, 0, at)
	b, err := Open(Options{Dir: dir, AuditWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	appendN(t, b, 5, "scans/here") // "0#4" .. "4#8"
	if n, err := b.Salvage(ctx, src); err != nil || n != 3 {
		t.Fatalf("Salvage = %d, %v", n, err)
	}
	// The salvaged entries spell out their epoch; this buffer's do not.
	stored := storedEntries(t, b)
	if e := stored[4]; e.Seq != 4 || e.Epoch != "" {
		t.Fatalf("own entry stored with seq %d, epoch %q; want 4 and the epoch empty", e.Seq, e.Epoch)
	}
	if e := stored[9]; e.Seq != 1 || e.Epoch != other {
		t.Fatalf("salvaged entry stored with seq %d, epoch %q; want 1 of %s", e.Seq, e.Epoch, other)
	}
	ackAll(t, b)

	here := b.Epoch()
	for _, tc := range []struct {
		name     string
		epoch    string
		from, to uint64
		want     string // payloads resent, in order
		bad      bool   // ErrBadRange
	}{
		{name: "range inside", from: 5, to: 7, want: "1#5 2#6 3#7"},
		{name: "one seq", from: 8, to: 8, want: "4#8"},
		{name: "open-ended", from: 6, want: "2#6 3#7 4#8"},
		{name: "this epoch by name", epoch: here, from: 4, to: 5, want: "0#4 1#5"},
		{name: "v1 entries never match", from: 1, to: 4, want: "0#4"},
		{name: "v1 entries never match, open", from: 1, want: "0#4 1#5 2#6 3#7 4#8"},
		{name: "past the end", from: 9, want: ""},
		{name: "other epoch", epoch: other, from: 2, to: 3, want: "src1#2 src2#3"},
		{name: "other epoch, open", epoch: other, from: 1, want: "src0#1 src1#2 src2#3"},
		{name: "unknown epoch", epoch: "no-such-epoch", from: 1, want: ""},
		{name: "from 0", from: 0, to: 5, bad: true},
		{name: "from 0, open", bad: true},
		{name: "to below from", from: 5, to: 4, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := b.Resend(ctx, tc.epoch, tc.from, tc.to)
			if tc.bad {
				if !errors.Is(err, ErrBadRange) || n != 0 {
					t.Fatalf("Resend(%q, %d, %d) = %d, %v; want ErrBadRange", tc.epoch, tc.from, tc.to, n, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			es := peekAll(t, b)
			var got []string
			for _, e := range es {
				got = append(got, string(e.Payload))
				var i int
				var seq uint64
				fmt.Sscanf(strings.TrimPrefix(string(e.Payload), "src"), "%d#%d", &i, &seq)
				wantEpoch := here
				if strings.HasPrefix(string(e.Payload), "src") {
					wantEpoch = other
				}
				if e.Seq != seq || e.Epoch != wantEpoch {
					t.Errorf("%s resent as seq %d of %q, want %d of %q", e.Payload, e.Seq, e.Epoch, seq, wantEpoch)
				}
			}
			if strings.Join(got, " ") != tc.want || n != len(es) {
				t.Fatalf("Resend(%q, %d, %d) = %d, queued %q; want %q", tc.epoch, tc.from, tc.to, n, strings.Join(got, " "), tc.want)
			}
			// Delivered again: the window now holds these twice, and a
			// later case must still get each seq once.
			ackAll(t, b)
		})
	}

	plain, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := plain.Resend(ctx, "", 1, 0); !errors.Is(err, ErrNoAuditWindow) {
		t.Fatalf("Resend without a window: %v", err)
	}
	if _, err := plain.Resend(ctx, "", 0, 0); !errors.Is(err, ErrBadRange) {
		t.Fatalf("Resend of a bad range without a window: %v", err)
	}
}

// ackAll acknowledges every waiting message and waits for the deletes
// (and their audit copies) to commit.
func ackAll(t testing.TB, b *Buffer) {
	t.Helper()
	for _, e := range peekAll(t, b) {
		b.Ack(e.Pos)
	}
	settled(t, b)
}

// storedEntries reads the queue's entries as stored, by position.
func storedEntries(t testing.TB, b *Buffer) map[uint64]Entry {
	t.Helper()
	es, _, err := readQueue(b.db)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]Entry{}
	for _, e := range es {
		out[e.Pos] = e
	}
	return out
}

// TestNoAuditWindowIsUnsupported: the uplink, which must not import the
// buffer, tells "no audit window" by errors.ErrUnsupported.
func TestNoAuditWindowIsUnsupported(t *testing.T) {
	b, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Resend(context.Background(), "", 1, 0)
	if !errors.Is(err, ErrNoAuditWindow) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Resend without an audit window: %v", err)
	}
}
