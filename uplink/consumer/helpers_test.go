package consumer

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/station/wire"
)

const testPrefix = "scangw/v1"

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// t0 is the rigs' clock at the start.
var t0 = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

// rig is a tracker fed by hand, recording what it reports.
type rig struct {
	t      *testing.T
	tr     *tracker
	now    time.Time
	gaps   []Gap
	epochs []Epoch
	firsts []string // "<gateway>/<epoch>/<seq>" of first deliveries
}

func newRig(t *testing.T, canAsk bool) *rig {
	r := &rig{t: t, now: t0}
	r.tr = newTracker(time.Second, time.Minute, canAsk,
		func(g Gap) { r.gaps = append(r.gaps, g) },
		func(e Epoch) { r.epochs = append(r.epochs, e) },
		slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	return r
}

// feed delivers the seqs of gw/epoch one by one; it returns which were
// first deliveries.
func (r *rig) feed(gw, epoch string, seqs ...uint64) []bool {
	var first []bool
	for _, s := range seqs {
		ev := Event{Site: "plant-a", Gateway: gw, Station: "dock-1", Seq: s, Epoch: epoch}
		ok := r.tr.event(&ev, r.now)
		if ok {
			r.firsts = append(r.firsts, fmt.Sprintf("%s/%s/%d", gw, epoch, s))
		}
		first = append(first, ok)
	}
	r.checkInvariants()
	return first
}

func (r *rig) advance(d time.Duration) { r.now = r.now.Add(d) }

// due returns the asks due now.
func (r *rig) due() []ask {
	a := r.tr.due(r.now)
	slices.SortFunc(a, func(x, y ask) int { return int(x.from) - int(y.from) })
	return a
}

// gapStates renders what was reported, for comparison.
func (r *rig) gapStates() []string {
	var s []string
	for _, g := range r.gaps {
		s = append(s, fmt.Sprintf("%s %s %d-%d missing %d asks %d", g.Gateway, g.State, g.From, g.To, g.Missing, g.Asks))
	}
	return s
}

func (r *rig) wantGaps(want ...string) {
	r.t.Helper()
	if got := r.gapStates(); !slices.Equal(got, want) {
		r.t.Fatalf("gap reports:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// checkInvariants holds the tracker to what its comments promise.
func (r *rig) checkInvariants() {
	r.t.Helper()
	if err := invariants(r.tr); err != nil {
		r.t.Fatal(err)
	}
}

func invariants(tr *tracker) error {
	for _, gw := range tr.gateways {
		if len(gw.streams) > maxEpochs {
			return fmt.Errorf("%v: %d epochs", gw.key, len(gw.streams))
		}
		for _, st := range gw.streams {
			if len(st.got) > tr.maxSpans {
				return fmt.Errorf("%d spans, more than %d", len(st.got), tr.maxSpans)
			}
			for i, sp := range st.got {
				if sp.lo == 0 || sp.lo > sp.hi || i > 0 && st.got[i-1].hi+1 >= sp.lo {
					return fmt.Errorf("spans not sorted, disjoint and apart: %v", st.got)
				}
			}
			has := func(seq uint64) bool {
				for _, sp := range st.got {
					if sp.lo <= seq && seq <= sp.hi {
						return true
					}
				}
				return false
			}
			for i, g := range st.gaps {
				if i > 0 && st.gaps[i-1].to >= g.from {
					return fmt.Errorf("gaps overlap: %d-%d and %d-%d", st.gaps[i-1].from, st.gaps[i-1].to, g.from, g.to)
				}
				var missing uint64
				for s := g.from; s <= g.to && s-g.from < 1<<16; s++ {
					if !has(s) {
						missing++
					}
				}
				if g.to-g.from < 1<<16 && missing != g.missing {
					return fmt.Errorf("gap %d-%d counts %d missing, %d are", g.from, g.to, g.missing, missing)
				}
				if g.missing == 0 {
					return fmt.Errorf("gap %d-%d on record with nothing missing", g.from, g.to)
				}
				if g.pending != "" && tr.pending[g.pending] != g {
					return fmt.Errorf("gap %d-%d waits for %s, which is not pending", g.from, g.to, g.pending)
				}
				if tr.canAsk && g.lost == "" && !tr.asking[st] {
					return fmt.Errorf("gap %d-%d can be asked for, its stream is not looked at", g.from, g.to)
				}
			}
		}
	}
	for id, g := range tr.pending {
		if g.pending != id || !slices.Contains(g.st.gaps, g) {
			return fmt.Errorf("pending %s for a gap that does not wait for it", id)
		}
	}
	return nil
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// encodeScan is a gateway's scan event, as it would publish it.
func encodeScan(t testing.TB, site, gw, station string, seq uint64, epoch, raw string) []byte {
	t.Helper()
	b, err := wire.Event{
		ID: wire.NewID(), Source: wire.StationSource(site, gw, station), Type: wire.ScanType, Time: t0,
		Data: &wire.ScanData{Seq: seq, Epoch: epoch, Station: station, Mode: "receive", Scanner: "h1", Raw: raw, Verdict: wire.Accepted, Reasons: []wire.Reason{}},
	}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeMessage is a paho message delivered by hand.
type fakeMessage struct {
	topic    string
	payload  []byte
	retained bool
}

func (m fakeMessage) Duplicate() bool   { return false }
func (m fakeMessage) Qos() byte         { return 1 }
func (m fakeMessage) Retained() bool    { return m.retained }
func (m fakeMessage) Topic() string     { return m.topic }
func (m fakeMessage) MessageID() uint16 { return 1 }
func (m fakeMessage) Payload() []byte   { return m.payload }
func (m fakeMessage) Ack()              {}
