package assign_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station/assign"
	"github.com/scangw/scangw/station/label"
	"github.com/scangw/scangw/station/serials"
	"github.com/scangw/scangw/station/wire"
)

func TestAssignCommitsEventAndState(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	var ps []*assign.Prepared
	for range 3 {
		ps = append(ps, r.assign(request("")))
	}
	for i, p := range ps {
		if want := fmt.Sprintf("gw1-%06d", i+1); p.Serial != want || p.Counter != uint64(i+1) {
			t.Errorf("assignment %d: %s counter %d, want %s counter %d", i, p.Serial, p.Counter, want, i+1)
		}
	}
	evs, streams := r.events()
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	for i, ev := range evs {
		d := ev.Data
		if ev.Type != wire.AssignedType || ev.ID != ps[i].EventID || ev.Source != source || streams[i] != wire.EventStream(station) {
			t.Errorf("event %d: type %s id %s source %s stream %s", i, ev.Type, ev.ID, ev.Source, streams[i])
		}
		if d.Status != wire.AssignIssued || d.Serial != ps[i].Serial || d.Counter != ps[i].Counter || d.Scheme != "unit" ||
			d.Station != station || d.GTIN != gtin || d.Operator != "op-7" || d.Trigger != wire.TriggerRead ||
			!d.ClockSynced || d.Epoch != r.buf.Epoch() || d.Seq == 0 {
			t.Errorf("event %d data: %+v", i, d)
		}
	}
	if c := r.counter("unit"); c.Next != 4 {
		t.Errorf("stored counter %+v, want next 4", c)
	}
	if got, want := r.keys("serials/unit/issued/"), []string{"serials/unit/issued/gw1-000001", "serials/unit/issued/gw1-000002", "serials/unit/issued/gw1-000003"}; !slices.Equal(got, want) {
		t.Errorf("issue records %v, want %v", got, want)
	}
	if got := r.keys("serials/last/"); !slices.Equal(got, []string{"serials/last/" + station}) {
		t.Errorf("last keys %v", got)
	}
	if got := r.a.Schemes(); !slices.Equal(got, []wire.SerialStatus{{Scheme: "unit", Remaining: 999999 - 3}}) {
		t.Errorf("Schemes() = %+v", got)
	}
	r.metrics(`
# HELP scangw_serials_issued_total Serials issued and committed, by scheme (re-prints are not counted).
# TYPE scangw_serials_issued_total counter
scangw_serials_issued_total{scheme="unit"} 3
# HELP scangw_serials_remaining Numbers a serial scheme's counter can still issue: up to its width's end (free) or in its granted blocks.
# TYPE scangw_serials_remaining gauge
scangw_serials_remaining{scheme="unit"} 999996
`, "scangw_serials_issued_total", "scangw_serials_remaining")
}

func TestDoneFalseIssuesTheNumberAgain(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	p, err := r.a.Prepare(request(""))
	if err != nil {
		t.Fatal(err)
	}
	p.Done(false)
	p.Done(true) // a second call is ignored
	if _, err := r.buf.LoadState("serials/unit"); err == nil {
		t.Error("a counter is stored after Done(false)")
	}
	again := r.assign(request(""))
	if again.Serial != p.Serial || again.Counter != p.Counter {
		t.Errorf("after Done(false): %s (%d), want %s (%d) again", again.Serial, again.Counter, p.Serial, p.Counter)
	}
	if next := r.assign(request("")); next.Counter != p.Counter+1 {
		t.Errorf("then counter %d, want %d", next.Counter, p.Counter+1)
	}
}

func TestPrepareRefusesBeforeReserving(t *testing.T) {
	r := newRig(t, t.TempDir(), func(o *assign.Options) {
		o.Schemes = append(o.Schemes, assign.Scheme{Name: "prod", Template: mustTemplate(t, "{gtin}.{seq:5}"), Start: 1})
		o.Printers = map[string]assign.Printer{"p1": &funcPrinter{}}
	})
	noReprint, err := label.Parse("^XA^FO10,10^BXN,5,200,,,,_^FD{gs1_data}^FS^XZ")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*assign.Request)
		want string
	}{
		{"unknown scheme", func(q *assign.Request) { q.Scheme = "nope" }, `scheme: "nope"`},
		{"bad station", func(q *assign.Request) { q.Station = "a/b" }, `station: "a/b"`},
		{"unknown printer", func(q *assign.Request) { q.Printer = "p9" }, `printer: "p9"`},
		{"missing gtin", func(q *assign.Request) { q.Scheme, q.GTIN = "prod", "" }, "gtin: missing"},
		{"bad gtin", func(q *assign.Request) { q.Scheme, q.GTIN = "prod", "09506000134353" }, "not a GTIN"},
		{"label needs gtin", func(q *assign.Request) { q.Printer, q.GTIN = "p1", ""; q.Label = noReprint }, "label"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := request("")
			tc.edit(&q)
			_, err := r.a.Prepare(q)
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeBadArgs || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Prepare: %v, want a bad_args error with %q", err, tc.want)
			}
		})
	}
	// Nothing was reserved and the lock is free.
	if p := r.assign(request("")); p.Counter != 1 {
		t.Errorf("counter %d after refusals, want 1", p.Counter)
	}
}

func TestConcurrentPreparesNeverShareASerial(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	const per = 50
	var mu sync.Mutex
	seen := map[string]int{}
	var counters []uint64
	var wg sync.WaitGroup
	for _, st := range []string{"bench-1", "bench-2"} {
		wg.Go(func() {
			for range per {
				q := request("")
				q.Station = st
				p, err := r.a.Prepare(q)
				if err != nil {
					t.Error(err)
					return
				}
				_, err = r.buf.SubmitWrite(context.Background(), buffer.Write{Records: p.Records, State: p.State})()
				p.Done(err == nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[p.Serial]++
				counters = append(counters, p.Counter)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for s, n := range seen {
		if n > 1 {
			t.Errorf("serial %s issued %d times", s, n)
		}
	}
	slices.Sort(counters)
	for i, c := range counters {
		if c != uint64(i+1) {
			t.Fatalf("counters %v: want 1 to %d without a gap", counters, 2*per)
		}
	}
	if c := r.counter("unit"); c.Next != 2*per+1 {
		t.Errorf("stored counter %+v, want next %d", c, 2*per+1)
	}
}

func TestGrantedScheme(t *testing.T) {
	dir := t.TempDir()
	granted := func(o *assign.Options) {
		o.Schemes = append(o.Schemes, assign.Scheme{Name: "blk", Template: mustTemplate(t, "B{seq:4}"), Granted: true, LowWater: 2})
	}
	r := newRig(t, dir, granted)
	q := request("")
	q.Scheme = "blk"
	if _, err := r.a.Prepare(q); !errors.Is(err, serials.ErrExhausted) {
		t.Fatalf("Prepare without a block: %v, want ErrExhausted", err)
	}
	for _, tc := range []struct {
		name string
		g    serials.Grant
	}{
		{"unknown scheme", serials.Grant{Scheme: "nope", From: 1, To: 2}},
		{"free scheme", serials.Grant{Scheme: "unit", From: 1, To: 2}},
		{"past the width", serials.Grant{Scheme: "blk", From: 9000, To: 10000}},
	} {
		var we *wire.Error
		if _, err := r.a.Grant(context.Background(), tc.g); !errors.As(err, &we) || we.Code != wire.CodeBadArgs {
			t.Errorf("%s: Grant: %v, want bad_args", tc.name, err)
		}
	}
	rem, err := r.a.Grant(context.Background(), serials.Grant{Scheme: "blk", From: 10, To: 12})
	if err != nil || rem != 3 {
		t.Fatalf("Grant 10-12: %d, %v; want 3", rem, err)
	}
	var got []string
	for range 3 {
		got = append(got, r.assign(q).Serial)
	}
	if want := []string{"B0010", "B0011", "B0012"}; !slices.Equal(got, want) {
		t.Errorf("serials %v, want %v", got, want)
	}
	if st := r.a.Schemes()[1]; st != (wire.SerialStatus{Scheme: "blk", Remaining: 0, Low: true, Granted: true}) {
		t.Errorf("status %+v", st)
	}
	if _, err := r.a.Prepare(q); !errors.Is(err, serials.ErrExhausted) {
		t.Errorf("Prepare past the block: %v, want ErrExhausted", err)
	}
	// Once at start (no block yet), once when 11 left it below low
	// water again; not again for 12.
	if n := strings.Count(r.logs.String(), "serial numbers running low"); n != 2 {
		t.Errorf("low-water warning logged %d times, want once per crossing (2):\n%s", n, r.logs)
	}
	r.metrics(`
# HELP scangw_serials_low 1 while a scheme has fewer numbers left than its low water.
# TYPE scangw_serials_low gauge
scangw_serials_low{scheme="blk"} 1
scangw_serials_low{scheme="unit"} 0
`, "scangw_serials_low")
	if _, err := r.a.Grant(context.Background(), serials.Grant{Scheme: "blk", From: 10, To: 12}); err == nil {
		t.Error("a used-up block was granted again")
	}
	for range 2 { // a retried grant changes nothing
		if rem, err := r.a.Grant(context.Background(), serials.Grant{Scheme: "blk", From: 20, To: 29}); err != nil || rem != 10 {
			t.Fatalf("Grant 20-29: %d, %v; want 10", rem, err)
		}
	}
	if st := r.a.Schemes()[1]; st.Low || st.Remaining != 10 {
		t.Errorf("after the grant: %+v", st)
	}

	r.stop()
	r = newRig(t, dir, granted)
	if st := r.a.Schemes()[1]; st.Remaining != 10 {
		t.Errorf("after a reopen: %+v, want 10 remaining", st)
	}
	if p := r.assign(q); p.Serial != "B0020" {
		t.Errorf("after a reopen: %s, want B0020", p.Serial)
	}
}

func TestCounterBehindIsRefused(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, nil)
	first := r.assign(request(""))
	// The counter set back, as a restore of an old state would.
	if err := r.buf.SaveState("serials/unit", []byte(`{"next":1}`)); err != nil {
		t.Fatal(err)
	}
	r.stop()
	r = newRig(t, dir, nil)
	_, err := r.a.Prepare(request(""))
	if err == nil || !strings.Contains(err.Error(), first.Serial+" was issued before") {
		t.Fatalf("Prepare with the counter behind: %v, want a refusal naming %s", err, first.Serial)
	}
	if evs, _ := r.events(); len(evs) != 1 {
		t.Errorf("%d events, want only the first", len(evs))
	}
}

func TestVerifyEvent(t *testing.T) {
	r := newRig(t, t.TempDir(), nil)
	p := r.assign(request(""))
	q := request("")
	q.GTIN = ""
	rec := r.a.VerifyEvent(q, p.Serial, wire.AssignVerifyFailed, []wire.Reason{{Code: "wrong_serial", Message: "read gw1-000009"}})
	if _, err := r.buf.SubmitWrite(context.Background(), buffer.Write{Records: []buffer.Record{rec}})(); err != nil {
		t.Fatal(err)
	}
	evs, _ := r.events()
	d := evs[1].Data
	if d.Status != wire.AssignVerifyFailed || d.Assigned != p.EventID || d.Counter != p.Counter || d.GTIN != gtin ||
		len(d.Reasons) != 1 || d.Reasons[0].Code != "wrong_serial" || evs[1].ID == p.EventID {
		t.Errorf("verify event: id %s %+v", evs[1].ID, d)
	}
	bad := r.a.VerifyEvent(q, p.Serial, wire.AssignIssued, nil)
	if _, err := bad.Build(1); err == nil {
		t.Error("a verify event with status assigned was built")
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*assign.Options)
	}{
		{"scheme named last", func(o *assign.Options) { o.Schemes[0].Name = "last" }},
		{"scheme twice", func(o *assign.Options) { o.Schemes = append(o.Schemes, o.Schemes[0]) }},
		{"no template", func(o *assign.Options) { o.Schemes[0].Template = nil }},
		{"printer named doubt", func(o *assign.Options) { o.Printers = map[string]assign.Printer{"doubt": &funcPrinter{}} }},
		{"printer not an id", func(o *assign.Options) { o.Printers = map[string]assign.Printer{"a b": &funcPrinter{}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := newRig(t, t.TempDir(), nil).buf
			o := assign.Options{Schemes: []assign.Scheme{{Name: "unit", Template: mustTemplate(t, "{seq:4}")}}, Store: buf}
			tc.edit(&o)
			if _, err := assign.New(o); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
}

// TestCounterLostContinuesAfterIssued: a counter whose key was lost (a
// salvage that could not read it) while its serials' issue records
// remain continues after the highest serial issued, never below.
func TestCounterLostContinuesAfterIssued(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, nil)
	for range 3 {
		r.assign(request(""))
	}
	if _, err := r.buf.SubmitWrite(context.Background(), buffer.Write{State: []buffer.StateValue{{Key: "serials/unit"}}})(); err != nil {
		t.Fatal(err)
	}
	r.stop()
	r = newRig(t, dir, nil)
	if p := r.assign(request("")); p.Counter != 4 || p.Serial != "gw1-000004" {
		t.Fatalf("after the counter was lost: %s from %d, want gw1-000004 from 4", p.Serial, p.Counter)
	}
}
