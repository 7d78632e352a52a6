package station

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
)

// tunnelStation is a station of two fixed readers on a real buffer with a
// clock the test moves.
func tunnelStation(t *testing.T, cfg Config, scanners ...Scanner) (*Station, *buffer.Buffer, *prometheus.Registry, *time.Time) {
	t.Helper()
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { buf.Close() })
	reg := prometheus.NewRegistry()
	cfg.ID, cfg.Mode, cfg.Site, cfg.Gateway = "tunnel-1", "receive", "plant-a", "gw-1"
	st := New(cfg, Deps{Scanners: scanners, Store: buf, Validator: LengthRule{Min: 3, Max: 40},
		Metrics: NewMetrics(reg), Log: slogDiscard(), ClockSynced: func() bool { return true }})
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	st.now = func() time.Time { return now }
	return st, buf, reg, &now
}

func read(scanner, data string) device.Read {
	return device.Read{Scanner: scanner, Data: []byte(data)}
}

// TestDebounce: a reader's repeat within its window and another reader's
// read of the same label within the station's are not stored, but are
// answered with the first read's signal; outside the windows, and for
// other codes, reads are scans again.
func TestDebounce(t *testing.T) {
	r1, r2 := newPlayback("r1"), newPlayback("r2")
	st, buf, reg, now := tunnelStation(t, Config{Debounce: time.Second, ScannerDebounce: map[string]time.Duration{"r1": 2 * time.Second}}, r1, r2)
	ctx := context.Background()
	step := func(sc *playback, data string, after time.Duration) {
		*now = now.Add(after)
		st.handle(ctx, sc, read(sc.id, data))
	}
	step(r1, "SER-0001", 0)                     // stored, good
	step(r1, "SER-0001", 500*time.Millisecond)  // r1 repeat: suppressed, good
	step(r2, "SER-0001", 300*time.Millisecond)  // station window: suppressed, good
	step(r1, "X", 0)                            // stored, rejected (too short): bad
	step(r1, "X", 100*time.Millisecond)         // repeat of a rejected read: bad again
	step(r2, "SER-0002", 0)                     // another code: stored
	step(r1, "SER-0001", 1500*time.Millisecond) // 1.9 s after r1 last read it: still in its window
	step(r2, "SER-0001", 3*time.Second)         // past both windows: a scan again
	step(r2, "SER-0001", 1500*time.Millisecond) // r2 has no window of its own, the station's is 1 s: a scan
	if got, want := len(r1.signals())+len(r2.signals()), 9; got != want {
		t.Fatalf("%d feedbacks for %d reads: a suppressed read must still be answered", got, want)
	}
	wantSig := []device.Signal{device.Good, device.Good, device.Bad, device.Bad, device.Good}
	for i, s := range r1.signals() {
		if s != wantSig[i] {
			t.Errorf("r1 feedback %d = %v, want %v", i, s, wantSig[i])
		}
	}
	if d := buf.Depth(); d != 5 {
		t.Errorf("%d scans stored, want 5 (SER-0001, X, SER-0002, SER-0001 twice more)", d)
	}
	if n1, n2 := testutil.ToFloat64(st.m.suppressed.WithLabelValues("tunnel-1", "r1", "repeat")),
		testutil.ToFloat64(st.m.suppressed.WithLabelValues("tunnel-1", "r2", "repeat")); n1 != 3 || n2 != 1 {
		t.Errorf("suppressed r1 %v, r2 %v, want 3 and 1", n1, n2)
	}
	if n := testutil.ToFloat64(st.m.reads.WithLabelValues("tunnel-1", "r1")); n != 5 {
		t.Errorf("reads{r1} = %v, want 5", n)
	}
	_ = reg
}

// TestRefusedReadIsNotDebounced: a read that could not be stored is taken
// again when the reader sends it again.
func TestRefusedReadIsNotDebounced(t *testing.T) {
	r1 := newPlayback("r1")
	st := New(Config{ID: "t", Mode: "receive", ScannerDebounce: map[string]time.Duration{"r1": time.Hour}},
		Deps{Scanners: []Scanner{r1}, Store: failingStore{}, Validator: LengthRule{Min: 1}, Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard()})
	st.handle(context.Background(), r1, read("r1", "SER-1"))
	st.handle(context.Background(), r1, read("r1", "SER-1"))
	if n := testutil.ToFloat64(st.m.refused.WithLabelValues("t")); n != 2 {
		t.Fatalf("refused = %v, want 2: the second read must be tried, not suppressed", n)
	}
}

// TestNoReads: a no-read is not a scan and gets no feedback; with
// noread_events it is a buffered event in seq order with the scans; the
// read rate counts it against the reader.
func TestNoReads(t *testing.T) {
	r1 := newPlayback("r1")
	st, buf, _, _ := tunnelStation(t, Config{NoReadEvents: true}, r1)
	ctx := context.Background()
	st.handle(ctx, r1, read("r1", "SER-0001"))
	st.handle(ctx, r1, device.Read{Scanner: "r1", Data: []byte("NOREAD"), NoRead: true})
	st.handle(ctx, r1, read("r1", "SER-0002"))
	st.handle(ctx, r1, read("r1", "SER-0003"))
	if sigs := r1.signals(); len(sigs) != 4 || sigs[1] != device.Missed || sigs[0] != device.Good {
		t.Fatalf("feedbacks %v, want good, missed (the no-read, after its commit), good, good", sigs)
	}
	es, err := buf.Peek(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 4 || es[1].Stream != wire.EventStream("tunnel-1") {
		t.Fatalf("%d stored, second on %q; want 4 with the no-read on the events stream", len(es), es[1].Stream)
	}
	var ev struct {
		Type string          `json:"type"`
		Data wire.NoReadData `json:"data"`
	}
	if err := schema.Check(es[1].Payload); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(es[1].Payload, &ev)
	if ev.Type != wire.NoReadType || ev.Data.Seq != 2 || ev.Data.Raw != "NOREAD" || ev.Data.Scanner != "r1" {
		t.Fatalf("no-read event %+v", ev)
	}
	status := st.Status()
	if rr := status.Scanners[0].ReadRate; rr == nil || *rr != 0.75 {
		t.Fatalf("read rate %v, want 0.75", rr)
	}
	if recent := st.Recent(); recent[2].Verdict != NoRead {
		t.Fatalf("recent outcome %+v, want a no-read", recent[2])
	}
}

// TestNoReadNotRecorded: a no-read the buffer could not take is answered
// bad, so that a reader in host-acknowledge mode sends it again.
func TestNoReadNotRecorded(t *testing.T) {
	r1 := newPlayback("r1")
	st := New(Config{ID: "t", Mode: "receive", NoReadEvents: true}, Deps{Scanners: []Scanner{r1}, Store: failingStore{},
		Validator: LengthRule{Min: 1}, Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard()})
	st.handle(context.Background(), r1, device.Read{Scanner: "r1", Data: []byte("NOREAD"), NoRead: true})
	if sigs := r1.signals(); len(sigs) != 1 || sigs[0] != device.Bad {
		t.Fatalf("feedbacks %v, want bad", sigs)
	}
	if n := testutil.ToFloat64(st.m.noreadEvents.WithLabelValues("t", "refused")); n != 1 {
		t.Fatalf("refused no-read events = %v, want 1", n)
	}
}

// TestReadRateWindow: the read rate covers the last 100 frames.
func TestReadRateWindow(t *testing.T) {
	var r readRates
	if r.rate("a") != nil {
		t.Fatal("a rate before any frame")
	}
	for i := range 150 {
		r.add("a", i >= 50) // the first 50 bad, then 100 good
	}
	if got := *r.rate("a"); got != 1 {
		t.Fatalf("rate %v, want 1 (the bad ones are older than the last 100)", got)
	}
	r.add("a", false)
	if got := *r.rate("a"); got != 0.99 {
		t.Fatalf("rate %v, want 0.99", got)
	}
}

// TestDebouncerBounded: a flood of distinct codes in one window cannot grow
// its memory past maxRepeats, and a read too long to remember is never
// suppressed.
func TestDebouncerBounded(t *testing.T) {
	d := newDebouncer(time.Hour, nil)
	now := time.Now()
	ctx := context.Background()
	for i := range 3 * maxRepeats {
		_, _, c := d.check(ctx, "r1", read("r1", fmt.Sprintf("L-%d", i)), now)
		d.resolve(c, device.Good, true)
	}
	if n := len(d.seen); n > maxRepeats {
		t.Fatalf("%d remembered, want at most %d", n, maxRepeats)
	}
	long := read("r1", strings.Repeat("x", maxRepeatLen+1))
	for range 2 {
		if _, repeat, c := d.check(ctx, "r1", long, now); repeat || c != nil {
			t.Fatal("a read longer than maxRepeatLen was debounced")
		}
	}
}

// slowStore is a store whose commits take a while, as on an SD card.
type slowStore struct {
	*buffer.Buffer
	delay time.Duration
}

func (s slowStore) Submit(ctx context.Context, stream string, build func(uint64) ([]byte, error)) func() (uint64, error) {
	wait := s.Buffer.Submit(ctx, stream, build)
	return func() (uint64, error) {
		time.Sleep(s.delay) // the sync's duration, not synchronisation
		return wait()
	}
}

// TestDebounceReadsTogether: two readers of one tunnel read a label at the
// same moment; the second waits for the first's commit and is answered
// like it, instead of being stored too.
func TestDebounceReadsTogether(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	r1, r2 := newPlayback("r1"), newPlayback("r2")
	st := New(Config{ID: "t", Mode: "receive", Debounce: time.Minute}, Deps{Scanners: []Scanner{r1, r2},
		Store: slowStore{buf, 20 * time.Millisecond}, Validator: LengthRule{Min: 1}, Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard()})
	for i := range 10 {
		code := fmt.Sprintf("L-%d", i)
		var wg sync.WaitGroup
		for _, sc := range []*playback{r1, r2} {
			wg.Go(func() { st.handle(context.Background(), sc, read(sc.id, code)) })
		}
		wg.Wait()
	}
	if d := buf.Depth(); d != 10 {
		t.Fatalf("%d scans stored for 10 labels read by two readers at once, want 10", d)
	}
	for _, sc := range []*playback{r1, r2} {
		for i, sig := range sc.signals() {
			if sig != device.Good {
				t.Fatalf("%s feedback %d = %v, want good", sc.id, i, sig)
			}
		}
	}
}

// TestDebounceForgetsOnContextChange: after the station's order changed, a
// label read again is a new scan for the new order.
func TestDebounceForgetsOnContextChange(t *testing.T) {
	r1 := newPlayback("r1")
	st, buf, _, _ := tunnelStation(t, Config{Debounce: time.Hour}, r1)
	ctx := context.Background()
	st.handle(ctx, r1, read("r1", "SER-1"))
	if err := st.SetContext(ctx, map[string]string{"order": "PO-2"}); err != nil {
		t.Fatal(err)
	}
	st.handle(ctx, r1, read("r1", "SER-1"))
	if d := buf.Depth(); d != 3 {
		t.Fatalf("%d stored, want the scan, the context event and the scan again", d)
	}
}
