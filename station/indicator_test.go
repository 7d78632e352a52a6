package station

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
)

// TestIndicatorFollowsTheVerdict checks the live notice for each outcome,
// and that a stored scan's notice comes after its commit.
func TestIndicatorFollowsTheVerdict(t *testing.T) {
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
	type notice struct {
		topic string
		ev    struct {
			Type string `json:"type"`
			Data struct {
				Seq     uint64   `json:"seq"`
				Verdict string   `json:"verdict"`
				Reasons []Reason `json:"reasons"`
			} `json:"data"`
		}
		committedThen int
	}
	var notices []notice
	notify := indicatorFunc(func(topic string, payload []byte) {
		if err := schema.Check(payload); err != nil {
			t.Errorf("notice: %v\n%s", err, payload)
		}
		var n notice
		n.topic = topic
		json.Unmarshal(payload, &n.ev)
		mu.Lock()
		n.committedThen = committed
		notices = append(notices, n)
		mu.Unlock()
	})
	sc := newPlayback("h1", "GOODSCAN", "x")
	sc.reads = append(sc.reads, device.Read{Scanner: "h1", Err: device.ErrOversize})
	cfg := Config{ID: "dock-3", Mode: "receive", Site: "plant-a", Gateway: "gw-1"}
	st := New(cfg, Deps{Scanners: []Scanner{sc}, Store: buf, Validator: LengthRule{Min: 3, Max: 20},
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard(), ClockSynced: func() bool { return true }, Indicator: notify})
	run(t, st, sc)

	failing := newPlayback("h2", "GOODSCAN")
	st2 := New(cfg, Deps{Scanners: []Scanner{failing}, Store: failingStore{}, Validator: LengthRule{Min: 3},
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard(), Indicator: notify})
	run(t, st2, failing)

	want := []struct {
		verdict string
		seq     uint64
	}{{Accepted, 1}, {Rejected, 2}, {Discarded, 0}, {Refused, 0}}
	if len(notices) != len(want) {
		t.Fatalf("%d notices, want %d", len(notices), len(want))
	}
	for i, w := range want {
		n := notices[i]
		if n.topic != wire.IndicatorStream("dock-3") || n.ev.Type != wire.IndicatorType ||
			n.ev.Data.Verdict != w.verdict || n.ev.Data.Seq != w.seq {
			t.Fatalf("notice %d: %s %+v, want %s seq %d", i, n.topic, n.ev, w.verdict, w.seq)
		}
		if w.seq > 0 && uint64(n.committedThen) < w.seq {
			t.Fatalf("notice for seq %d sent with only %d scans committed", w.seq, n.committedThen)
		}
	}
}

// TestRecentOutcomes keeps the latest outcomes for the status page, newest
// first: verdicts with their seq and readable data (a GS separator shown
// as ␝, a bidi override neutralised, long data clipped), discarded reads,
// and no more than 20.
func TestRecentOutcomes(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	long := strings.Repeat("é", 200)
	sc := newPlayback("h1", "GOOD\x1dSCAN", "x\u202egnp.exe", long)
	sc.reads = append(sc.reads, device.Read{Scanner: "h1", Err: device.ErrOversize})
	st := newStation(t, buf, prometheus.NewRegistry(), sc)
	run(t, st, sc)

	got := st.Recent()
	if len(got) != 4 {
		t.Fatalf("%d outcomes, want 4: %+v", len(got), got)
	}
	want := []struct {
		verdict, data string
		seq           uint64
	}{{Discarded, "", 0}, {Rejected, "", 3}, {Accepted, "x\ufffdgnp.exe", 2}, {Accepted, "GOOD␝SCAN", 1}}
	for i, w := range want {
		o := got[i]
		if o.Verdict != w.verdict || o.Seq != w.seq || o.Scanner != "h1" || o.Time.IsZero() || (w.data != "" && o.Data != w.data) {
			t.Errorf("outcome %d = %+v, want %s seq %d data %q", i, o, w.verdict, w.seq, w.data)
		}
	}
	if d := got[1].Data; !strings.HasSuffix(d, "…") || len(d) > maxOutcomeData+len("…") || len(d) < maxOutcomeData-1 || !utf8.ValidString(d) {
		t.Errorf("long data kept as %q (%d bytes), want it clipped on a rune boundary with …", d, len(d))
	}
	if len(got[0].Reasons) != 1 || got[0].Reasons[0].Code != "oversize" {
		t.Errorf("discarded read's reasons %+v, want oversize", got[0].Reasons)
	}

	many := make([]string, 25)
	for i := range many {
		many[i] = fmt.Sprintf("SCAN%02d", i)
	}
	sc2 := newPlayback("h2", many...)
	st2 := newStation(t, buf, prometheus.NewRegistry(), sc2)
	run(t, st2, sc2)
	got = st2.Recent()
	if len(got) != recentSize || got[0].Data != "SCAN24" || got[recentSize-1].Data != "SCAN05" {
		t.Errorf("after 25 scans: %d outcomes from %q to %q, want %d from SCAN24 to SCAN05", len(got), got[0].Data, got[len(got)-1].Data, recentSize)
	}
}

// indicatorFunc is a function as an Indicator.
type indicatorFunc func(stream string, payload []byte)

func (f indicatorFunc) Notify(stream string, payload []byte) { f(stream, payload) }
