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
