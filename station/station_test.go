package station

import (
	"context"
	"encoding/json"
	"errors"
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
)

func TestParseAIM(t *testing.T) {
	for _, tc := range []struct{ in, sym, rest string }{
		{"]C1010950600013435221ABC", "]C1", "010950600013435221ABC"},
		{"]d2\x1d01", "]d2", "\x1d01"},
		{"]Q3x", "]Q3", "x"},
		{"]E0", "]E0", ""},
		{"]e0123", "]e0", "123"},
		{"ABC", "", "ABC"},
		{"]", "", "]"},
		{"]C", "", "]C"},
		{"]1C", "", "]1C"},
		{"]C-", "", "]C-"},
		{"", "", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			sym, rest := ParseAIM([]byte(tc.in))
			if sym != tc.sym || string(rest) != tc.rest {
				t.Fatalf("ParseAIM(%q) = %q, %q; want %q, %q", tc.in, sym, rest, tc.sym, tc.rest)
			}
		})
	}
}

func FuzzParseAIM(f *testing.F) {
	for _, s := range []string{"]C1abc", "]d2", "]", "x", "]Z9\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sym, rest := ParseAIM(in)
		if sym+string(rest) != string(in) {
			t.Fatalf("split lost bytes: %q -> %q + %q", in, sym, rest)
		}
		if sym != "" && len(sym) != 3 {
			t.Fatalf("symbology %q", sym)
		}
	})
}

// playback is a fake scanner: it delivers recorded reads in order, records
// the feedback, and checks with check each time feedback is given.
type playback struct {
	id    string
	reads []device.Read
	check func(n int) // called with the number of feedbacks so far, before recording

	mu       sync.Mutex
	feedback []device.Signal
	failFB   error
	done     chan struct{}
}

func newPlayback(id string, data ...string) *playback {
	p := &playback{id: id, done: make(chan struct{})}
	for _, d := range data {
		p.reads = append(p.reads, device.Read{Scanner: id, Data: []byte(d), Time: time.Now()})
	}
	return p
}

func (p *playback) ID() string { return p.id }

func (p *playback) Run(ctx context.Context, handle func(context.Context, device.Read)) error {
	for _, r := range p.reads {
		handle(ctx, r)
	}
	close(p.done)
	<-ctx.Done()
	return nil
}

func (p *playback) Feedback(s device.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.check != nil {
		p.check(len(p.feedback))
	}
	p.feedback = append(p.feedback, s)
	return p.failFB
}

func (p *playback) signals() []device.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]device.Signal(nil), p.feedback...)
}

// run plays every read through a station and waits until all were handled.
func run(t *testing.T, st *Station, scanners ...*playback) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- st.Run(ctx) }()
	for _, p := range scanners {
		<-p.done
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, p := range scanners {
		if got := len(p.signals()); got != len(p.reads) {
			t.Fatalf("scanner %s: %d feedbacks for %d reads", p.id, got, len(p.reads))
		}
	}
}

func newStation(t *testing.T, store Store, reg prometheus.Registerer, scanners ...Scanner) *Station {
	cfg := Config{ID: "dock-3", Mode: "receive", Site: "plant-a", Gateway: "gw-1"}
	return New(cfg, Deps{Scanners: scanners, Store: store, Validator: LengthRule{Min: 3, Max: 20}, Metrics: NewMetrics(reg), Log: slogDiscard(), ClockSynced: func() bool { return true }})
}

func TestVerdictsAndFeedbackFollowCommit(t *testing.T) {
	var mu sync.Mutex
	committed := 0
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir(), OnCommit: func(seqs []uint64) {
		mu.Lock()
		committed += len(seqs)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()

	sc := newPlayback("h1",
		"]C1ABC123",             // accepted, AIM stripped
		"",                      // rejected: empty
		"AB\x07C",               // rejected: control character
		"xy",                    // rejected: too short
		"\xff\xfeABC",           // rejected: not UTF-8, kept as base64
		"GS1\x1d1234",           // accepted: GS is allowed
		strings.Repeat("9", 21), // rejected: too long
	)
	oversize := device.Read{Scanner: "h1", Data: []byte("trunc"), Err: device.ErrOversize}
	sc.reads = append(sc.reads, oversize)
	// Every feedback must come after the commit of its scan: the n-th
	// feedback (0-based) needs at least n+1 committed scans, except the
	// discarded read, which is never stored.
	sc.check = func(n int) {
		mu.Lock()
		defer mu.Unlock()
		if want := min(n+1, 7); committed < want {
			t.Errorf("feedback %d given with only %d scans committed", n, committed)
		}
	}
	reg := prometheus.NewRegistry()
	st := newStation(t, buf, reg, sc)
	run(t, st, sc)

	want := []device.Signal{device.Good, device.Bad, device.Bad, device.Bad, device.Bad, device.Good, device.Bad, device.Bad}
	if got := sc.signals(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("feedback %v, want %v", got, want)
	}

	es, err := buf.Peek(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 7 {
		t.Fatalf("stored %d scans, want 7 (the oversize read is not a scan)", len(es))
	}
	type ev struct {
		ID   string `json:"id"`
		Data struct {
			Seq       uint64   `json:"seq"`
			Raw       string   `json:"raw"`
			RawBase64 string   `json:"raw_base64"`
			Symbology string   `json:"symbology"`
			Verdict   string   `json:"verdict"`
			Reasons   []Reason `json:"reasons"`
		} `json:"data"`
	}
	wantCodes := []string{"", "empty", "non_printable", "too_short", "not_utf8", "", "too_long"}
	ids := map[string]bool{}
	for i, e := range es {
		if e.Stream != wire.ScanStream("dock-3") {
			t.Fatalf("stream %q", e.Stream)
		}
		if strings.Contains(string(e.Payload), "\n") {
			t.Fatalf("payload not single-line: %s", e.Payload)
		}
		var v ev
		if err := json.Unmarshal(e.Payload, &v); err != nil {
			t.Fatal(err)
		}
		if v.Data.Seq != uint64(i+1) {
			t.Fatalf("scan %d carries data.seq %d", i, v.Data.Seq)
		}
		if ids[v.ID] {
			t.Fatalf("duplicate id %s", v.ID)
		}
		ids[v.ID] = true
		code := ""
		if len(v.Data.Reasons) > 0 {
			code = v.Data.Reasons[0].Code
		}
		if code != wantCodes[i] {
			t.Errorf("scan %d: reason %q, want %q (%s)", i, code, wantCodes[i], e.Payload)
		}
	}
	var first ev
	json.Unmarshal(es[0].Payload, &first)
	if first.Data.Raw != "ABC123" || first.Data.Symbology != "]C1" || first.Data.Verdict != Accepted {
		t.Fatalf("first scan: %+v", first.Data)
	}
	var bin ev
	json.Unmarshal(es[4].Payload, &bin)
	if bin.Data.RawBase64 != "//5BQkM=" {
		t.Fatalf("raw_base64 = %q", bin.Data.RawBase64)
	}

	expected := `
# HELP scangw_station_reads_discarded_total Reads discarded before they became scans, by reason.
# TYPE scangw_station_reads_discarded_total counter
scangw_station_reads_discarded_total{reason="oversize",station="dock-3"} 1
# HELP scangw_station_scans_total Scans stored, by station and verdict.
# TYPE scangw_station_scans_total counter
scangw_station_scans_total{station="dock-3",verdict="accepted"} 2
scangw_station_scans_total{station="dock-3",verdict="rejected"} 5
scangw_station_scans_total{station="dock-3",verdict="warning"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected), "scangw_station_scans_total", "scangw_station_reads_discarded_total"); err != nil {
		t.Fatal(err)
	}
}

// failingStore refuses every append, like a full or broken disk.
type failingStore struct{}

func (failingStore) Submit(context.Context, string, func(uint64) ([]byte, error)) func() (uint64, error) {
	return func() (uint64, error) { return 0, errors.New("no space left on device") }
}
func (failingStore) SubmitWrite(context.Context, buffer.Write) func() ([]uint64, error) {
	return func() ([]uint64, error) { return nil, errors.New("no space left on device") }
}
func (failingStore) Epoch() string { return "e" }

func TestUnstorableScanGetsBadSignal(t *testing.T) {
	sc := newPlayback("h1", "GOOD123", "GOOD456")
	reg := prometheus.NewRegistry()
	st := newStation(t, failingStore{}, reg, sc)
	run(t, st, sc)
	if got := sc.signals(); fmt.Sprint(got) != fmt.Sprint([]device.Signal{device.Bad, device.Bad}) {
		t.Fatalf("feedback %v", got)
	}
	if n := testutil.ToFloat64(st.m.refused.WithLabelValues("dock-3")); n != 2 {
		t.Fatalf("refused = %v", n)
	}
}

func TestEncodeScanEscapes(t *testing.T) {
	s := &Scan{ID: "id", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), Station: "s", Mode: "receive",
		Scanner: "h", Data: []byte("<a&b>\x1d\"q\""), Verdict: Accepted}
	b, err := EncodeScan(s, "scangw://a/b/s", 42, "ep")
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{`"raw":"<a&b>\u001d\"q\""`, `"seq":42`, `"time":"2026-01-02T02:04:05.000000006Z"`, `"reasons":[]`, `"specversion":"1.0"`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %s in %s", want, got)
		}
	}
}
