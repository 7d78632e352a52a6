package serialsim

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSendReadsFeedbackAndDrainDiscards(t *testing.T) {
	p, err := Open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Play the gateway on the slave side.
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := p.slave.Read(b)
		got <- string(b[:n])
		p.slave.Write([]byte{0x06})
	}()
	fb, err := p.Send(context.Background(), "ABC\r", "\n", 5*time.Second)
	if err != nil || fb != 0x06 {
		t.Fatalf("Send = %#x, %v", fb, err)
	}
	if s := <-got; s != "ABC\r\n" {
		t.Fatalf("slave read %q: line not raw", s)
	}
	// Stale answers (late ACKs) are discarded by Drain, even after a
	// deadline expired on the master.
	if _, err := p.Send(context.Background(), "X", "\n", time.Millisecond); !errors.Is(err, ErrNoFeedback) {
		t.Fatalf("unanswered Send: %v", err)
	}
	p.slave.Write([]byte{0x06, 0x15, 0x06})
	deadline := time.Now().Add(5 * time.Second)
	total := 0
	for total < 3 && time.Now().Before(deadline) {
		n, err := p.Drain()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 3 {
		t.Fatalf("Drain discarded %d bytes, want 3", total)
	}
	if n, _ := p.Drain(); n != 0 {
		t.Fatalf("second Drain discarded %d", n)
	}
}
