package buffer

import (
	"context"
	"errors"
	"fmt"
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
	n, err := b.Requeue(ctx, func(e Entry) bool {
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
	if _, err := plain.Requeue(ctx, func(Entry) bool { return true }); !errors.Is(err, ErrNoAuditWindow) {
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
	n, err := b.Requeue(ctx, func(Entry) bool { return true })
	if err != nil || n < 6000 {
		t.Fatalf("Requeue = %d, %v; want every delivered message back", n, err)
	}
}
