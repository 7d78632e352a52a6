package station

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
)

// feed is a fake scanner fed by the test: each read sent on in is handled,
// and its feedback is sent on out. hold, when set, blocks Feedback until it
// is closed: a read in the middle of its pipeline.
type feed struct {
	id      string
	in      chan string
	out     chan device.Signal
	hold    chan struct{}
	runs    atomic.Int32 // Run calls
	running atomic.Bool
}

func newFeed(id string) *feed {
	return &feed{id: id, in: make(chan string), out: make(chan device.Signal, 16)}
}

func (f *feed) ID() string { return f.id }

func (f *feed) Run(ctx context.Context, handle func(context.Context, device.Read)) error {
	f.runs.Add(1)
	f.running.Store(true)
	defer f.running.Store(false)
	for {
		select {
		case <-ctx.Done():
			return nil
		case d := <-f.in:
			handle(ctx, device.Read{Scanner: f.id, Data: []byte(d), Time: time.Now()})
		}
	}
}

func (f *feed) Feedback(s device.Signal) error {
	if f.hold != nil {
		<-f.hold
	}
	f.out <- s
	return nil
}

// scan sends one read and returns its feedback.
func (f *feed) scan(t *testing.T, data string) device.Signal {
	t.Helper()
	f.in <- data
	return <-f.out
}

// TestStationUpdate reloads a running station: the scanner kept reads on
// in the same Run, the removed one is stopped only after its read in hand
// was stored and answered (Busy shows that read meanwhile), the added one
// starts, and the new mode and validator apply to the next read.
func TestStationUpdate(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	a, b, c := newFeed("a"), newFeed("b"), newFeed("c")
	cfg := Config{ID: "dock-1", Mode: "receive", Site: "s", Gateway: "g"}
	st := New(cfg, Deps{Scanners: []Scanner{a, b}, Store: buf, State: buf,
		Validator: LengthRule{Min: 1}, Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard()})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- st.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}()

	if sig := a.scan(t, "ABC"); sig != device.Good {
		t.Fatalf("before the update: %v", sig)
	}
	// Busy ends just after the answer (it covers the feedback write).
	for deadline := time.Now().Add(5 * time.Second); !st.Busy().IsZero(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("busy while every scanner waits")
		}
	}

	// b's next read stops in its feedback, after its commit.
	b.hold = make(chan struct{})
	b.in <- "HELD"
	for st.Busy().IsZero() {
		time.Sleep(time.Millisecond) // polling Busy, the state under test
	}
	cfg.Mode = "ship"
	done := make(chan error, 1)
	go func() {
		done <- st.Update(ctx, Update{Config: cfg, Scanners: []Scanner{a, c}, Validator: LengthRule{Min: 4}})
	}()
	select {
	case err := <-done:
		t.Fatalf("Update returned (%v) while b's read was in hand", err)
	case <-time.After(50 * time.Millisecond):
	}
	if st.Busy().IsZero() {
		t.Fatal("the read in hand of a scanner being removed is not busy")
	}
	close(b.hold)
	if sig := <-b.out; sig != device.Good {
		t.Fatalf("the read in hand on the removed scanner: %v", sig)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b.running.Load() {
		t.Fatal("the removed scanner still runs")
	}

	// The next read on a is judged by the new validator (min length 4)
	// in the new mode; c reads too; a was never restarted.
	if sig := a.scan(t, "ABC"); sig != device.Bad {
		t.Fatalf("a 3-byte read after min_length became 4: %v", sig)
	}
	if sig := c.scan(t, "ABCD"); sig != device.Good {
		t.Fatalf("the added scanner: %v", sig)
	}
	if n := a.runs.Load(); n != 1 {
		t.Fatalf("the kept scanner was run %d times", n)
	}
	if m, _ := st.State(); m != "ship" {
		t.Fatalf("mode %q after the config changed it to ship", m)
	}
	if got := scanIDs(st); len(got) != 2 || got[0] != "a" || got[1] != "c" {
		t.Fatalf("scanners after the update: %v", got)
	}

	es, err := buf.Peek(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var held bool
	for _, e := range es {
		var ev struct {
			Data struct{ Raw string }
		}
		json.Unmarshal(e.Payload, &ev)
		held = held || ev.Data.Raw == "HELD"
	}
	if !held {
		t.Fatal("the read in hand on the removed scanner was not stored")
	}

	// A station keeps its id; a mode the operator set stays when the
	// config's mode did not change.
	if err := st.Update(ctx, Update{Config: Config{ID: "other", Site: "s", Gateway: "g"}}); err == nil {
		t.Fatal("an update changed the station's id")
	}
	if err := st.SetMode(ctx, "receive"); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, Update{Config: cfg, Scanners: []Scanner{a, c}, Validator: LengthRule{Min: 4}}); err != nil {
		t.Fatal(err)
	}
	if m, _ := st.State(); m != "receive" {
		t.Fatalf("an unchanged config mode overrode the operator's mode: %q", m)
	}
}

func scanIDs(st *Station) []string {
	var ids []string
	for _, sc := range st.Scanners() {
		ids = append(ids, sc.ID())
	}
	return ids
}

// TestSetReplace adds and removes stations of a running set; a station in
// both lists keeps running.
func TestSetReplace(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	m := NewMetrics(prometheus.NewRegistry())
	mk := func(id string, sc *feed) *Station {
		return New(Config{ID: id, Mode: "receive"}, Deps{Scanners: []Scanner{sc}, Store: buf,
			Validator: LengthRule{Min: 1}, Metrics: m, Log: slogDiscard()})
	}
	fa, fb, fc := newFeed("a"), newFeed("b"), newFeed("c")
	sa, sb, sc := mk("one", fa), mk("two", fb), mk("three", fc)
	set, err := NewSet(sa, sb)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- set.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}()
	if sig := fb.scan(t, "X"); sig != device.Good {
		t.Fatal(sig)
	}
	if err := set.Replace(sa, sc); err != nil {
		t.Fatal(err)
	}
	if fb.running.Load() {
		t.Fatal("the removed station's scanner runs on")
	}
	if sig := fc.scan(t, "Y"); sig != device.Good {
		t.Fatal(sig)
	}
	if sig := fa.scan(t, "Z"); sig != device.Good || fa.runs.Load() != 1 {
		t.Fatalf("kept station: %v after %d runs", sig, fa.runs.Load())
	}
	if _, err := set.Status("two"); err == nil {
		t.Fatal("a removed station is still addressable")
	}
	if err := set.Replace(sa, mk("one", newFeed("d"))); err == nil {
		t.Fatal("two stations with one id accepted")
	}
}
