package consumer

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/scangw/scangw/station/wire"
)

func TestDedupeBySeq(t *testing.T) {
	r := newRig(t, true)
	got := r.feed("gw-1", "e1", 1, 2, 2, 3, 1, 3, 4)
	if want := []bool{true, true, false, true, false, false, true}; !slices.Equal(got, want) {
		t.Fatalf("first deliveries %v, want %v", got, want)
	}
	// The same seq in another epoch or of another gateway is another event.
	if got := r.feed("gw-1", "e2", 2); !got[0] {
		t.Error("seq 2 of a new epoch taken for a duplicate")
	}
	if got := r.feed("gw-2", "e1", 2); !got[0] {
		t.Error("seq 2 of another gateway taken for a duplicate")
	}
	if st := r.tr.gateways[gwKey{"plant-a", "gw-1"}].streams[0]; len(st.got) != 1 {
		t.Errorf("a gap-free stream is kept as %v, want one span", st.got)
	}
}

// TestReorderCloses: a seq that arrives late, within ResendAfter, opens
// and closes a gap and asks for nothing.
func TestReorderCloses(t *testing.T) {
	r := newRig(t, true)
	r.feed("gw-1", "e1", 1, 3)
	r.advance(time.Second - time.Millisecond)
	if a := r.due(); len(a) != 0 {
		t.Fatalf("asked %v before ResendAfter", a)
	}
	r.feed("gw-1", "e1", 2)
	r.advance(time.Hour)
	if a := r.due(); len(a) != 0 {
		t.Fatalf("asked %v for a closed gap", a)
	}
	r.wantGaps("gw-1 open 2-2 missing 1 asks 0", "gw-1 closed 2-2 missing 0 asks 0")
}

// TestGapAskedNarrowedAndClosed: a gap is asked for after ResendAfter,
// asked again for only what is still missing with a doubled wait, and
// closes when the last seq arrives.
func TestGapAskedNarrowedAndClosed(t *testing.T) {
	r := newRig(t, true)
	r.feed("gw-1", "e1", 1, 2, 7)
	r.advance(time.Second)
	a := r.due()
	if len(a) != 1 || a[0].from != 3 || a[0].to != 6 || a[0].epoch != "e1" || a[0].site != "plant-a" || a[0].gateway != "gw-1" {
		t.Fatalf("asks %+v, want one for 3-6 of plant-a/gw-1 e1", a)
	}
	r.feed("gw-1", "e1", 3, 6)
	r.advance(2*time.Second - time.Millisecond)
	if a := r.due(); len(a) != 0 {
		t.Fatalf("asked again %v before twice ResendAfter", a)
	}
	r.advance(time.Millisecond)
	a = r.due()
	if len(a) != 1 || a[0].from != 4 || a[0].to != 5 {
		t.Fatalf("second asks %+v, want 4-5, what is still missing", a)
	}
	r.tr.reply(reply{id: a[0].id, ok: true, requeued: 2}, r.now)
	// Queued again at the gateway: not asked before ResendMax.
	r.advance(time.Minute - time.Millisecond)
	if a := r.due(); len(a) != 0 {
		t.Fatalf("asked %v while the gateway has them queued", a)
	}
	r.feed("gw-1", "e1", 5, 4)
	r.wantGaps(
		"gw-1 open 3-6 missing 4 asks 0",
		"gw-1 asked 3-6 missing 4 asks 1",
		"gw-1 asked 3-6 missing 2 asks 2",
		"gw-1 closed 3-6 missing 0 asks 2",
	)
	if len(r.tr.pending) != 0 || len(r.tr.asking) != 0 {
		t.Errorf("after the close: %d pending, %d streams asked for", len(r.tr.pending), len(r.tr.asking))
	}
}

// TestBackoff: unanswered requests wait twice as long each time, up to
// ResendMax; a live birth of the gateway asks again at once.
func TestBackoff(t *testing.T) {
	r := newRig(t, true)
	r.feed("gw-1", "e1", 1, 3)
	var at []time.Duration
	for range 40 * 60 {
		if len(r.due()) > 0 {
			at = append(at, r.now.Sub(t0))
		}
		r.advance(time.Second)
	}
	want := []time.Duration{1, 3, 7, 15, 31, 63, 123, 183} // +2, +4 … +32, then +60 (ResendMax)
	for i, w := range want {
		if i >= len(at) || at[i] != w*time.Second {
			t.Fatalf("asked at %v, want it first at %v s", at, want)
		}
	}
	r.tr.status("plant-a", "gw-1", "e1", wire.Online, true, r.now)
	if len(r.due()) != 0 {
		t.Error("the retained status of a subscribe made it ask at once")
	}
	r.tr.status("plant-a", "gw-1", "e1", wire.Online, false, r.now)
	if len(r.due()) != 1 {
		t.Error("a live birth did not make it ask at once")
	}
}

// TestGapLost: the gateway's reply that it has nothing to resend, or no
// audit window, stops the requests; a seq of the gap that turns up later
// is still delivered, once. Other refusals are asked again.
func TestGapLost(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply reply
		lost  bool
	}{
		{"requeued 0", reply{ok: true, requeued: 0}, true},
		{"no audit window", reply{code: wire.CodeNoAuditWindow, message: "no audit window is kept"}, true},
		{"unsupported", reply{code: wire.CodeUnsupported, message: "this gateway cannot resend"}, true},
		{"bad signature", reply{code: wire.CodeBadSignature, message: "no key matches"}, false},
		{"expired", reply{code: wire.CodeExpired, message: "clock"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, true)
			r.feed("gw-1", "e1", 1, 4)
			r.advance(time.Second)
			a := r.due()
			tc.reply.id = a[0].id
			r.tr.reply(tc.reply, r.now)
			r.checkInvariants()
			r.advance(time.Hour)
			again := len(r.due()) > 0
			if again == tc.lost {
				t.Fatalf("asked again: %v, want %v", again, !tc.lost)
			}
			if !tc.lost {
				return
			}
			if got := r.feed("gw-1", "e1", 3, 3, 2); !slices.Equal(got, []bool{true, false, true}) {
				t.Fatalf("late seqs of a lost gap delivered %v, want once each", got)
			}
			r.wantGaps("gw-1 open 2-3 missing 2 asks 0", "gw-1 asked 2-3 missing 2 asks 1", "gw-1 lost 2-3 missing 2 asks 1", "gw-1 closed 2-3 missing 0 asks 1")
			if r.gaps[2].Reason == "" {
				t.Error("a lost gap without a reason")
			}
		})
	}
}

// TestStaleReplyIgnored: only the answer to the latest request counts,
// and replies to others' commands change nothing.
func TestStaleReplyIgnored(t *testing.T) {
	r := newRig(t, true)
	r.feed("gw-1", "e1", 1, 3)
	r.advance(time.Second)
	first := r.due()[0].id
	r.advance(2 * time.Second)
	second := r.due()[0].id
	r.tr.reply(reply{id: first, ok: true, requeued: 0}, r.now)
	r.tr.reply(reply{id: "c-17", ok: true, requeued: 0}, r.now)
	r.checkInvariants()
	for _, g := range r.gaps {
		if g.State == GapLost {
			t.Fatalf("a superseded reply made the gap lost: %+v", g)
		}
	}
	r.tr.reply(reply{id: second, ok: true, requeued: 0}, r.now)
	if r.gaps[len(r.gaps)-1].State != GapLost {
		t.Fatalf("the latest reply did not count: %v", r.gapStates())
	}
}

func TestNoKeyNoAsks(t *testing.T) {
	r := newRig(t, false)
	r.feed("gw-1", "e1", 1, 5)
	r.advance(time.Hour)
	if a := r.due(); len(a) != 0 {
		t.Fatalf("asked %v without a key", a)
	}
	r.wantGaps("gw-1 open 2-4 missing 3 asks 0")
}

// TestEpochs: where counting starts. A gateway seen for the first time is
// counted from its first event; a new epoch of a known gateway from 1;
// events of an older epoch than the one its status names (salvaged) from
// where they start. Each epoch keeps its own seqs.
func TestEpochs(t *testing.T) {
	r := newRig(t, true)
	r.tr.status("plant-a", "gw-1", "e1", wire.Online, true, r.now)
	r.feed("gw-1", "e1", 500, 501, 499)
	if len(r.gaps) != 0 || len(r.epochs) != 0 {
		t.Fatalf("first sight of a gateway reported %v %v", r.gapStates(), r.epochs)
	}
	// A live birth with a new epoch: it began afresh.
	r.tr.status("plant-a", "gw-1", "e2", wire.Online, false, r.now)
	if len(r.epochs) != 1 || r.epochs[0] != (Epoch{Site: "plant-a", Gateway: "gw-1", Epoch: "e2", Previous: "e1"}) {
		t.Fatalf("epochs %+v, want e2 after e1", r.epochs)
	}
	r.feed("gw-1", "e2", 2)
	r.wantGaps("gw-1 open 1-1 missing 1 asks 0")
	// Salvaged events of an epoch never seen, older than e2.
	r.feed("gw-1", "e0", 70, 71)
	// The old epoch goes on where it was.
	if got := r.feed("gw-1", "e1", 501, 502, 1); !slices.Equal(got, []bool{false, true, true}) {
		t.Fatalf("e1 after e2: %v", got)
	}
	if len(r.epochs) != 1 || len(r.gaps) != 1 {
		t.Fatalf("old epochs reported %v %v", r.epochs, r.gapStates())
	}
	// An epoch change seen in events only, without a status.
	r.feed("gw-2", "f1", 10, 11)
	r.feed("gw-2", "f2", 1)
	if len(r.epochs) != 2 || r.epochs[1].Epoch != "f2" || r.epochs[1].Previous != "f1" {
		t.Fatalf("epochs %+v, want f2 after f1", r.epochs)
	}
}

// TestBounded: a stream keeps at most maxSpans ranges, giving up the
// oldest gap; a gateway at most maxEpochs epochs; the tracker at most
// maxGateways gateways. What is given up is reported lost.
func TestBounded(t *testing.T) {
	r := newRig(t, false)
	r.tr.maxSpans, r.tr.maxGateways = 4, 2
	r.feed("gw-1", "e1", 1, 3, 5, 7)
	r.feed("gw-1", "e1", 9)
	r.wantGaps(
		"gw-1 open 2-2 missing 1 asks 0", "gw-1 open 4-4 missing 1 asks 0", "gw-1 open 6-6 missing 1 asks 0",
		"gw-1 open 8-8 missing 1 asks 0", "gw-1 lost 2-2 missing 1 asks 0",
	)
	if got := r.feed("gw-1", "e1", 2, 4); !slices.Equal(got, []bool{false, true}) {
		t.Fatalf("seq 2 given up, 4 not: delivered %v, want false true", got)
	}
	for _, e := range []string{"e2", "e3", "e4", "e5"} {
		r.advance(time.Second)
		r.feed("gw-1", e, 1)
	}
	if n := len(r.tr.gateways[gwKey{"plant-a", "gw-1"}].streams); n != maxEpochs {
		t.Fatalf("%d epochs kept, want %d", n, maxEpochs)
	}
	if last := r.gaps[len(r.gaps)-1]; last.State != GapLost || last.From != 8 {
		t.Fatalf("forgetting e1 reported %+v, want its gap 8-8 lost", last)
	}
	r.advance(time.Second)
	r.feed("gw-2", "e1", 1, 3)
	r.advance(time.Second)
	r.feed("gw-3", "e1", 1)
	if len(r.tr.gateways) != 2 || r.tr.gateways[gwKey{"plant-a", "gw-1"}] != nil {
		t.Fatalf("gateways kept: %v, want gw-2 and gw-3", r.tr.gateways)
	}
}

// TestTopSeq: the largest seq neither overflows nor opens a gap past it.
func TestTopSeq(t *testing.T) {
	r := newRig(t, false)
	const top = ^uint64(0)
	if got := r.feed("gw-1", "e1", top-1, top, top, top-2); !slices.Equal(got, []bool{true, true, false, true}) {
		t.Fatalf("delivered %v", got)
	}
}

// BenchmarkTrackerFleet tracks a fleet of gap-free gateways, as a central
// system does for months, and reports what each gateway costs: the
// record must not grow with the events seen.
func BenchmarkTrackerFleet(b *testing.B) {
	const gateways = 10_000
	evs := make([]Event, gateways)
	for i := range evs {
		evs[i] = Event{Site: "plant-a", Gateway: fmt.Sprintf("gw-%05d", i), Epoch: "019ac3e1-0000-7000-8000-000000000000"}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := newTracker(time.Second, time.Minute, true, func(Gap) {}, func(Epoch) {}, discard)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev := &evs[i%gateways]
		ev.Seq++
		tr.event(ev, t0)
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(min(b.N, gateways)), "heap-B/gateway")
	runtime.KeepAlive(tr)
}
