//go:build demo

package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the demo's writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo runs the demo as a newcomer would (with a scan limit) and checks
// that it ends by itself with every stored scan at its embedded broker,
// good and bad verdicts both shown.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out syncBuffer
	if err := demo(ctx, &out, len(demoScans), t.TempDir()); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"broker  scangw/v1/demo-site/gw-demo/status  online",
		"heard ACK (stored, good beep)",
		"heard NAK (stored, bad beep)",
		"rejected gs1.bad_check_digit",
		"rejected empty",
		"accepted raw=\"00106141411234567897\"",
		"document order PO-1234: the context is now map[order:PO-1234]",
		"demo: all 18 stored reads reached the broker",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q:\n%s", want, got)
		}
	}
}
