package station

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
)

// settling is a scanner whose first open has or has not ended yet.
type settling struct {
	id      string
	settled atomic.Bool
}

func (s *settling) ID() string    { return s.id }
func (s *settling) Settled() bool { return s.settled.Load() }
func (s *settling) Run(ctx context.Context, _ func(context.Context, device.Read)) error {
	<-ctx.Done()
	return nil
}
func (s *settling) Feedback(device.Signal) error { return nil }

// TestReadyWaitsForScanners: a station (and the set) is ready only once its
// pipeline runs and every scanner settled; scanners that cannot tell, or
// that are down for good, do not hold it back.
func TestReadyWaitsForScanners(t *testing.T) {
	slow := &settling{id: "h1"}
	st := newStation(t, failingStore{}, prometheus.NewRegistry(), slow, newPlayback("h2"), device.Down("h3", nil))
	set, err := NewSet(st)
	if err != nil {
		t.Fatal(err)
	}
	if set.Ready() {
		t.Fatal("ready before Run")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !st.Running() {
		if time.Now().After(deadline) {
			t.Fatal("station never ran")
		}
		time.Sleep(time.Millisecond)
	}
	if st.Ready() || set.Ready() {
		t.Fatal("ready while a scanner's port is still being opened")
	}
	slow.settled.Store(true)
	if !st.Ready() || !set.Ready() {
		t.Fatal("not ready with every scanner settled")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st.Ready() {
		t.Fatal("ready after the station stopped")
	}
}

// TestControlCharacterLogged: a read rejected for a control character says
// so in the log, once per interval, with how many were held back.
func TestControlCharacterLogged(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	var logs bytes.Buffer
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	mk := func(sc *playback) *Station {
		st := New(Config{ID: "dock-3", Mode: "receive"}, Deps{Scanners: []Scanner{sc}, Store: buf, Validator: LengthRule{Min: 1},
			Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewTextHandler(&logs, nil))})
		st.now = func() time.Time { return now }
		return st
	}
	st := mk(newPlayback("h1", "PC-8-1\n\nPC-8-1", "A\tB", "GOOD", "X\x01"))
	run(t, st, st.Scanners()[0].(*playback))
	if n := strings.Count(logs.String(), "msg=\"scan rejected: it holds a control character"); n != 1 {
		t.Fatalf("%d log lines for 3 garbled reads within 10 s, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "station=dock-3") || !strings.Contains(logs.String(), "scanner=h1") ||
		!strings.Contains(logs.String(), "0x0A at byte 6") {
		t.Fatalf("log line lacks station, scanner or reason:\n%s", logs.String())
	}
	now = now.Add(11 * time.Second)
	sc := newPlayback("h1", "Y\x02")
	if err := st.Update(t.Context(), Update{Config: Config{ID: "dock-3", Mode: "receive"}, Scanners: []Scanner{sc}, Validator: LengthRule{Min: 1}}); err != nil {
		t.Fatal(err)
	}
	run(t, st, sc)
	if !strings.Contains(logs.String(), "suppressed_since_last=2") {
		t.Fatalf("the next line does not count the 2 held back:\n%s", logs.String())
	}
}
