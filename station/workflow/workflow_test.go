package workflow

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/station/wire"
)

const (
	gtinA    = "09506000134352"
	gtinB    = "09506000134369"
	gtinC    = "09506000134376"
	gtinBike = "09506000134383"
	gtinPart = "09506000134390"
	gtinCase = "09506000134406"
	gtinPal  = "09506000134413"
	ssccOne  = "106141411234567897"
	ssccTwo  = "106141411234567903"
)

func receivingRules(t *testing.T) *fakeRules {
	listed := map[string]bool{"B1": true, "B2": true, "B3": true}
	return &fakeRules{
		docs: []Pattern{mustPattern(t, wire.DocOrder, `PO-[0-9]+`, "")},
		orders: map[string]Order{
			"PO-1001": {Name: "PO-1001", Policy: Warn, Lines: []Line{
				{Product: gtinA, Quantity: 2},
				{Product: gtinB, Quantity: 2, Serials: true},
			}, Listed: func(prod, serial string) bool { return prod != gtinB || listed[serial] }},
			"PO-2002": {Name: "PO-2002", Lines: []Line{{Product: gtinC, Quantity: 1}}},
		},
	}
}

// A receiving session: badge, PO, serials against the ASN with one
// duplicate, one unexpected product, one wrong serial, one over-scan; the
// completion event comes once; progress survives a reboot and a switch
// to another order and back.
func TestReceivingSession(t *testing.T) {
	s := newStation(t, "dock1", "receive", memIndex{}, receivingRules(t))
	s.cfg.Documents = []Pattern{mustPattern(t, wire.DocOperator, `BADGE-(?P<value>[0-9]+)`, "")}
	s.cfg.Unexpected = map[string]string{"receive": Reject}

	out := s.read("BADGE-0042", nil, "")
	if !out.Document || out.Signal != SignalGood || len(out.Contexts) != 1 {
		t.Fatalf("badge: %+v", out)
	}
	if c := out.Contexts[0]; c.Cause != wire.CauseDocument || c.Document.Kind != wire.DocOperator || c.Document.Value != "0042" || c.Context["operator"] != "0042" {
		t.Fatalf("badge context event %+v", c)
	}
	out = s.read("PO-1001", nil, "")
	if !out.Document || out.Contexts[0].Context["order"] != "PO-1001" || s.st.Order == nil || s.st.Order.Name != "PO-1001" {
		t.Fatalf("PO: %+v, state %+v", out, s.st)
	}

	type want struct {
		gtin, sn, outcome, status string
		findings                  []string
	}
	steps := []want{
		{gtinA, "A1", wire.OrderCounted, wire.OrderProgress, nil},
		{gtinA, "A1", wire.OrderRepeat, wire.OrderProgress, []string{"warn:order.repeat"}},
		{gtinB, "B1", wire.OrderCounted, wire.OrderProgress, nil},
		{gtinC, "C1", wire.OrderUnexpected, wire.OrderProgress, []string{"reject:order.unexpected"}},
		{gtinA, "A2", wire.OrderCounted, wire.OrderProgress, nil},
		{gtinB, "B9", wire.OrderWrongSerial, wire.OrderProgress, []string{"warn:order.wrong_serial"}},
		{gtinB, "B2", wire.OrderCounted, wire.OrderComplete, nil},
		{gtinA, "A3", wire.OrderOver, wire.OrderProgress, []string{"warn:order.over"}},
		{gtinA, "A3", wire.OrderRepeat, wire.OrderProgress, []string{"warn:order.repeat"}},
		{gtinC, "C1", wire.OrderUnexpected, wire.OrderProgress, []string{"reject:order.unexpected"}}, // rejected: judged again
	}
	completes := 0
	var last *wire.OrderData
	for i, w := range steps {
		out := s.unit(w.gtin, w.sn)
		wantFindings(t, out, w.findings...)
		o := out.Order
		if out.Document || o == nil || o.Last.Outcome != w.outcome || o.Status != w.status {
			t.Fatalf("step %d (%s/%s): order event %+v, want %s %s", i, w.gtin, w.sn, o, w.outcome, w.status)
		}
		if o.Last.Unit != unitKey(w.gtin, w.sn) || o.Last.Scan == "" || o.Operator != "0042" || o.Order != "PO-1001" || o.Mode != "receive" {
			t.Fatalf("step %d: order event %+v", i, o)
		}
		if o.Status == wire.OrderComplete {
			completes++
		}
		last = o
	}
	if completes != 1 {
		t.Fatalf("%d completion events, want 1", completes)
	}
	if last.Counted != 4 || last.Remaining != 0 || last.Over != 1 || last.Unexpected != 2 || last.WrongSerial != 1 {
		t.Fatalf("final progress %+v", last)
	}
	wantLines := []wire.OrderLine{{Product: gtinA, Expected: 2, Counted: 2}, {Product: gtinB, Expected: 2, Counted: 2}}
	if !slices.Equal(last.Lines, wantLines) {
		t.Fatalf("lines %+v, want %+v", last.Lines, wantLines)
	}
	if _, ok := s.idx[CountedKey("dock1", "PO-1001", unitKey(gtinC, "C1"))]; ok {
		t.Fatal("a rejected unit was remembered as counted")
	}
	if v := s.idx[CountedKey("dock1", "PO-1001", unitKey(gtinB, "B9"))]; v != wire.OrderWrongSerial {
		t.Fatalf("B9 remembered as %q", v)
	}

	// A reboot: the state from its JSON, the same index.
	b, err := json.Marshal(s.st)
	if err != nil {
		t.Fatal(err)
	}
	s.st = &State{}
	if err := json.Unmarshal(b, s.st); err != nil {
		t.Fatal(err)
	}
	if out := s.unit(gtinA, "A1"); out.Order.Last.Outcome != wire.OrderRepeat || out.Order.Counted != 4 {
		t.Fatalf("after reboot: %+v", out.Order)
	}

	// Another order, then this one again: it resumes.
	s.read("PO-2002", nil, "")
	if s.st.Order.Name != "PO-2002" || s.st.Order.Lines[0].Counted != 0 {
		t.Fatalf("PO-2002 progress %+v", s.st.Order)
	}
	s.read("PO-1001", nil, "")
	if p := s.st.Order; p.Name != "PO-1001" || !slices.Equal(p.Lines, wantLines) || !p.Complete || p.Over != 1 {
		t.Fatalf("PO-1001 resumed as %+v", p)
	}

	// A close code closes the order; the scans after it count for none.
	s.cfg.Documents = append(s.cfg.Documents, mustPattern(t, wire.DocClose, `CLOSE`, ""))
	out = s.read("CLOSE", nil, "")
	if !out.Document || out.Contexts[0].Context["order"] != "" || s.st.Order != nil || s.st.Context["operator"] != "0042" {
		t.Fatalf("close: %+v state %+v", out, s.st)
	}
	if out := s.unit(gtinA, "A9"); out.Order != nil || len(out.Findings) != 0 {
		t.Fatalf("scan with no order: %+v", out)
	}
}

func TestOrderEdgeCases(t *testing.T) {
	rules := receivingRules(t)
	t.Run("an unknown order keeps no progress", func(t *testing.T) {
		s := newStation(t, "d", "receive", memIndex{}, rules)
		out := s.read("PO-9", nil, "")
		wantFindings(t, out)
		if out.Signal != SignalGood || s.st.Context["order"] != "PO-9" || s.st.Order != nil {
			t.Fatalf("%+v %+v", out, s.st)
		}
		if out := s.unit(gtinA, "A1"); out.Order != nil {
			t.Fatalf("progress of an unknown order: %+v", out.Order)
		}
	})
	t.Run("a read without unit counts by product", func(t *testing.T) {
		s := newStation(t, "d", "receive", memIndex{}, rules)
		s.read("PO-1001", nil, "")
		for i, want := range []string{wire.OrderCounted, wire.OrderCounted, wire.OrderOver} {
			out := s.read("(01)"+gtinA, map[string]string{"gtin": gtinA}, "")
			if out.Order.Last.Outcome != want {
				t.Fatalf("read %d: %s, want %s", i, out.Order.Last.Outcome, want)
			}
		}
	})
	t.Run("a rejected scan does not count", func(t *testing.T) {
		s := newStation(t, "d", "receive", memIndex{}, rules)
		s.read("PO-1001", nil, "")
		out := s.step(Input{Read: &Read{Raw: "x", Fields: map[string]string{"gtin": gtinA, "serial": "A1"}, Unit: unitKey(gtinA, "A1"), Verdict: wire.Rejected}})
		if out.Order != nil || len(out.Writes) != 0 {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("a reload that changes the lines keeps the counts by product", func(t *testing.T) {
		r := receivingRules(t)
		s := newStation(t, "d", "receive", memIndex{}, r)
		s.read("PO-1001", nil, "")
		s.unit(gtinB, "B1")
		o := r.orders["PO-1001"]
		o.Lines = []Line{{Product: gtinB, Quantity: 1, Serials: true}, {Product: gtinC, Quantity: 1}}
		r.orders["PO-1001"] = o
		out := s.unit(gtinC, "C1")
		want := []wire.OrderLine{{Product: gtinB, Expected: 1, Counted: 1}, {Product: gtinC, Expected: 1, Counted: 1}}
		if !slices.Equal(out.Order.Lines, want) || out.Order.Status != wire.OrderComplete {
			t.Fatalf("%+v", out.Order)
		}
	})
	t.Run("the pick key names the order when order is absent", func(t *testing.T) {
		s := newStation(t, "d", "ship", memIndex{}, rules)
		s.cmd(Command{Kind: SetContext, Context: map[string]string{"pick": "PO-2002"}})
		if out := s.unit(gtinC, "C1"); out.Order == nil || out.Order.Status != wire.OrderComplete {
			t.Fatalf("%+v", out.Order)
		}
	})
}

func packing(t *testing.T, id string, idx memIndex) *station {
	s := newStation(t, id, ModePack, idx, nil)
	s.cfg.Documents = append([]Pattern{mustPattern(t, wire.DocClose, `CLOSE`, ""), mustPattern(t, wire.DocCancel, `CANCEL`, "")}, BuiltinPatterns()...)
	return s
}

// A packing session: an SSCC, 12 cases, closed by the SSCC again; the
// cases are then taken by no other pallet until an unpack removes one.
func TestPackingSession(t *testing.T) {
	idx := memIndex{}
	a := packing(t, "pack1", idx)
	a.cmd(Command{Kind: SetContext, Context: map[string]string{"operator": "7"}})
	out := a.sscc(ssccOne)
	if out.Document || a.st.Open == nil || a.st.Open.Parent != "gs1:(00)"+ssccOne || a.st.Open.Operator != "7" {
		t.Fatalf("parent: %+v, open %+v", out, a.st.Open)
	}
	var cases []string
	for i := range 12 {
		sn := "K" + string(rune('A'+i))
		cases = append(cases, unitKey(gtinCase, sn))
		if out := a.unit(gtinCase, sn); len(out.Findings) != 0 || len(out.Aggregations) != 0 {
			t.Fatalf("case %d: %+v", i, out)
		}
	}
	wantFindings(t, a.unit(gtinCase, "KC"), "warn:aggregation.repeat")
	if len(a.st.Open.Children) != 12 {
		t.Fatalf("%d children open", len(a.st.Open.Children))
	}
	out = a.sscc(ssccOne)
	if len(out.Aggregations) != 1 || a.st.Open != nil {
		t.Fatalf("close by parent: %+v", out)
	}
	ag := out.Aggregations[0]
	if ag.Action != wire.AggAdd || ag.Mode != ModePack || ag.ClosedBy != wire.ClosedByParent || ag.Operator != "7" || !slices.Equal(ag.Children, cases) || ag.Context["operator"] != "7" {
		t.Fatalf("aggregation %+v", ag)
	}
	for _, c := range cases {
		if want := `{"parent":"gs1:(00)` + ssccOne + `","station":"pack1","open":false}`; idx[ChildKey(c)] != want {
			t.Fatalf("link of %s: %s", c, idx[ChildKey(c)])
		}
	}

	// Another station cannot take a packed case into its pallet.
	b := packing(t, "pack2", idx)
	b.sscc(ssccTwo)
	wantFindings(t, b.unit(gtinCase, "KE"), "reject:aggregation.packed")

	// Unpack one case at the first station: mode switch, parent, case,
	// close code.
	if out := a.cmd(Command{Kind: SetMode, Mode: ModeUnpack}); out.Err != nil {
		t.Fatal(out.Err)
	}
	a.sscc(ssccOne)
	wantFindings(t, a.unit(gtinCase, "ZZ"), "reject:aggregation.not_in_parent")
	a.unit(gtinCase, "KE")
	out = a.read("CLOSE", nil, "")
	if !out.Document || len(out.Aggregations) != 1 || len(out.Contexts) != 1 || out.Contexts[0].Document.Kind != wire.DocClose {
		t.Fatalf("unpack close: %+v", out)
	}
	if ag := out.Aggregations[0]; ag.Action != wire.AggDelete || ag.Mode != ModeUnpack || ag.ClosedBy != wire.ClosedByCode || !slices.Equal(ag.Children, []string{unitKey(gtinCase, "KE")}) {
		t.Fatalf("unpack %+v", ag)
	}
	if _, ok := idx[ChildKey(unitKey(gtinCase, "KE"))]; ok {
		t.Fatal("the unpacked case is still linked")
	}
	// Now the second station may take it.
	if out := b.unit(gtinCase, "KE"); len(out.Findings) != 0 || !slices.Contains(b.st.Open.Children, unitKey(gtinCase, "KE")) {
		t.Fatalf("repack: %+v", out)
	}
}

func TestAggregationRules(t *testing.T) {
	t.Run("a child being packed elsewhere is refused until cancelled there", func(t *testing.T) {
		idx := memIndex{}
		a, b := packing(t, "a", idx), packing(t, "b", idx)
		a.sscc(ssccOne)
		a.unit(gtinCase, "K1")
		b.sscc(ssccTwo)
		wantFindings(t, b.unit(gtinCase, "K1"), "reject:aggregation.in_open")
		out := a.read("CANCEL", nil, "")
		if !out.Document || len(out.Aggregations) != 0 || len(out.Contexts) != 1 || a.st.Open != nil {
			t.Fatalf("cancel: %+v", out)
		}
		wantFindings(t, b.unit(gtinCase, "K1"))
	})
	t.Run("empty close records nothing", func(t *testing.T) {
		a := packing(t, "a", memIndex{})
		a.sscc(ssccOne)
		out := a.sscc(ssccOne)
		wantFindings(t, out, "warn:aggregation.empty")
		if len(out.Aggregations) != 0 || a.st.Open != nil {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("child count closes", func(t *testing.T) {
		a := packing(t, "a", memIndex{})
		a.cfg.ChildCount = 2
		a.sscc(ssccOne)
		a.unit(gtinCase, "K1")
		out := a.unit(gtinCase, "K2")
		if len(out.Aggregations) != 1 || out.Aggregations[0].ClosedBy != wire.ClosedByCount || a.st.Open != nil {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("max children", func(t *testing.T) {
		a := packing(t, "a", memIndex{})
		a.cfg.MaxChildren = 1
		a.sscc(ssccOne)
		a.unit(gtinCase, "K1")
		wantFindings(t, a.unit(gtinCase, "K2"), "reject:aggregation.full")
	})
	t.Run("a parent inside its child is a cycle", func(t *testing.T) {
		a := packing(t, "a", memIndex{})
		a.unit(gtinCase, "K1") // the case
		a.unit(gtinA, "I1")    // an item in it
		a.unit(gtinCase, "K1")
		a.unit(gtinA, "I1") // the item as a parent
		wantFindings(t, a.unit(gtinCase, "K1"), "reject:aggregation.cycle")
	})
	t.Run("no unit, rejected reads, mode change", func(t *testing.T) {
		a := packing(t, "a", memIndex{})
		wantFindings(t, a.read("(01)"+gtinA, map[string]string{"gtin": gtinA}, ""), "reject:aggregation.no_unit")
		a.step(Input{Read: &Read{Raw: "x", Unit: unitKey(gtinA, "1"), Verdict: wire.Rejected}})
		if a.st.Open != nil {
			t.Fatal("a rejected read opened an aggregation")
		}
		a.sscc(ssccOne)
		out := a.cmd(Command{Kind: SetMode, Mode: "receive"})
		if !errors.Is(out.Err, ErrAggregationOpen) || out.Next != nil || len(out.Contexts) != 0 {
			t.Fatalf("%+v", out)
		}
		if out := a.cmd(Command{Kind: SetMode, Mode: ModePack}); out.Err != nil {
			t.Fatalf("same mode refused: %v", out.Err)
		}
	})
	t.Run("outside pack an SSCC is a shipment document", func(t *testing.T) {
		a := packing(t, "a", memIndex{})
		a.st.Mode = "receive"
		out := a.sscc(ssccOne)
		if !out.Document || a.st.Context["shipment"] != ssccOne || a.st.Open != nil {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("a parent label opens and closes", func(t *testing.T) {
		a := packing(t, "a", memIndex{})
		a.cfg.Documents = append(a.cfg.Documents, mustPattern(t, wire.DocParent, `TOTE-[0-9]+`, ""))
		out := a.read("TOTE-1", nil, "")
		if !out.Document || a.st.Open == nil || a.st.Open.Parent != "TOTE-1" || len(out.Contexts) != 1 {
			t.Fatalf("%+v", out)
		}
		wantFindings(t, a.read("TOTE-2", nil, ""), "reject:aggregation.open")
		a.unit(gtinA, "1")
		out = a.read("TOTE-1", nil, "")
		if len(out.Aggregations) != 1 || out.Aggregations[0].ClosedBy != wire.ClosedByParent {
			t.Fatalf("%+v", out)
		}
		a.st.Mode = "receive"
		if out := a.read("TOTE-1", nil, ""); out.Signal != SignalBad || out.Next != nil {
			t.Fatalf("parent outside pack: %+v", out)
		}
	})
	t.Run("unpack takes only the parent's children, once", func(t *testing.T) {
		idx := memIndex{}
		a, b := packing(t, "a", idx), packing(t, "b", idx)
		for _, p := range []struct{ sscc, sn string }{{ssccOne, "K1"}, {ssccTwo, "K2"}} {
			a.sscc(p.sscc)
			a.unit(gtinCase, p.sn)
			a.sscc(p.sscc)
		}
		b.sscc("000000000000000003")
		b.unit(gtinCase, "K3") // open at b
		for _, s := range []*station{a, b} {
			s.cmd(Command{Kind: SetMode, Mode: ModeUnpack})
			s.sscc(ssccOne)
		}
		if b.st.Open == nil || b.st.Mode != ModePack {
			t.Fatal("b changed mode with a pack open")
		}
		wantFindings(t, a.unit(gtinCase, "K2"), "reject:aggregation.not_in_parent")
		wantFindings(t, a.unit(gtinCase, "K3"), "reject:aggregation.not_in_parent")
		a.unit(gtinCase, "K1")
		// b unpacks K1 as well, and closes first: a's close finds it gone.
		b.cmd(Command{Kind: CancelAggregation})
		b.cmd(Command{Kind: SetMode, Mode: ModeUnpack})
		b.sscc(ssccOne)
		b.unit(gtinCase, "K1")
		if out := b.sscc(ssccOne); len(out.Aggregations) != 1 {
			t.Fatalf("b: %+v", out)
		}
		out := a.sscc(ssccOne)
		wantFindings(t, out, "warn:aggregation.empty")
		if len(out.Aggregations) != 0 {
			t.Fatalf("a deleted K1 again: %+v", out.Aggregations)
		}
	})
	t.Run("a stale open mark of this station is ignored", func(t *testing.T) {
		idx := memIndex{ChildKey(unitKey(gtinA, "1")): `{"parent":"lost","station":"a","open":true}`}
		a := packing(t, "a", idx)
		a.sscc(ssccOne)
		wantFindings(t, a.unit(gtinA, "1"))
	})
}

// A pallet whose GTIN requires 3 cases of one GTIN: a wrong product is
// refused, by the rule or by the config's list; an early close is
// refused by each of its ways; the rule's count wins over the config's,
// survives a reload of the rules and a reboot, and the 3rd case closes.
func TestRequiredChildren(t *testing.T) {
	newPacker := func() *station {
		s := packing(t, "p", memIndex{})
		s.rules = &fakeRules{children: map[string]Children{gtinPal: {Products: []string{gtinCase, gtinB}, Count: 3}}}
		s.cfg.ChildProducts = []string{gtinCase, gtinA}
		s.cfg.ChildCount = 2
		return s
	}
	s := newPacker()
	if out := s.unit(gtinPal, "P1"); len(out.Findings) != 0 || s.st.Open == nil || s.st.Open.Require.Count != 3 {
		t.Fatalf("open: %+v, %+v", out, s.st.Open)
	}
	s.rules = &fakeRules{}                                                  // a reload: the open pallet keeps its requirement
	wantFindings(t, s.unit(gtinA, "X"), "reject:aggregation.child_product") // the rule's list
	wantFindings(t, s.unit(gtinB, "X"), "reject:aggregation.child_product") // the config's list
	wantFindings(t, s.unit(gtinCase, "K1"))
	if out := s.unit(gtinCase, "K2"); len(out.Findings) != 0 || len(out.Aggregations) != 0 {
		t.Fatalf("closed at the config's count: %+v", out)
	}
	// A reboot: the state as stored.
	var back State
	if err := json.Unmarshal([]byte(*encode(s.st)), &back); err != nil {
		t.Fatal(err)
	}
	s.st = &back
	open := s.st.Clone()
	out := s.unit(gtinPal, "P1")
	wantFindings(t, out, "reject:aggregation.count")
	if msg := out.Findings[0].Reason.Message; msg != "3 children required, 2 scanned" {
		t.Fatalf("message %q", msg)
	}
	out = s.read("CLOSE", nil, "")
	wantFindings(t, out, "reject:aggregation.count")
	if out.Signal != SignalBad || len(out.Contexts) != 0 || len(out.Aggregations) != 0 {
		t.Fatalf("close code: %+v", out)
	}
	if out := s.cmd(Command{Kind: CloseAggregation}); !errors.Is(out.Err, ErrTooFewChildren) || out.Next != nil || out.Signal != SignalBad {
		t.Fatalf("close command: %+v", out)
	}
	if !equalState(s.st, open) {
		t.Fatalf("a refused close changed the state: %+v", s.st.Open)
	}
	out = s.unit(gtinCase, "K3")
	if len(out.Aggregations) != 1 || s.st.Open != nil {
		t.Fatalf("3rd case: %+v", out)
	}
	want := []string{unitKey(gtinCase, "K1"), unitKey(gtinCase, "K2"), unitKey(gtinCase, "K3")}
	if ag := out.Aggregations[0]; ag.ClosedBy != wire.ClosedByCount || ag.Parent != unitKey(gtinPal, "P1") || !slices.Equal(ag.Children, want) {
		t.Fatalf("%+v", ag)
	}

	t.Run("cancel still drops it", func(t *testing.T) {
		s := newPacker()
		s.unit(gtinPal, "P2")
		s.unit(gtinCase, "K4")
		if out := s.read("CANCEL", nil, ""); len(out.Findings) != 0 || s.st.Open != nil || len(s.idx) != 0 {
			t.Fatalf("%+v, index %v", out, s.idx)
		}
	})
	t.Run("unpack requires nothing", func(t *testing.T) {
		s := newPacker()
		s.st.Mode = ModeUnpack
		s.idx[ChildKey(unitKey(gtinCase, "K1"))] = `{"parent":"` + unitKey(gtinPal, "P1") + `","station":"p","open":false}`
		s.unit(gtinPal, "P1")
		s.unit(gtinCase, "K1")
		if out := s.unit(gtinPal, "P1"); len(out.Findings) != 0 || len(out.Aggregations) != 1 {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("a count above max children does not open", func(t *testing.T) {
		s := newPacker()
		s.cfg.MaxChildren = 2
		wantFindings(t, s.unit(gtinPal, "P3"), "reject:aggregation.count")
		if s.st.Open != nil {
			t.Fatalf("opened: %+v", s.st.Open)
		}
	})
	t.Run("a parent of no rule takes the config's", func(t *testing.T) {
		s := newPacker()
		s.sscc(ssccOne)
		s.unit(gtinCase, "K5")
		if out := s.unit(gtinCase, "K6"); len(out.Aggregations) != 1 || out.Aggregations[0].ClosedBy != wire.ClosedByCount {
			t.Fatalf("%+v", out)
		}
	})
}

// A build: the bike's frame serial, three part serials, closed by a
// command; a child of another product is refused.
func TestBuild(t *testing.T) {
	s := newStation(t, "bench", ModeBuild, memIndex{}, nil)
	s.cfg.ChildProducts = []string{gtinPart}
	s.unit(gtinBike, "F1")
	for _, sn := range []string{"P1", "P2", "P3"} {
		wantFindings(t, s.unit(gtinPart, sn))
	}
	wantFindings(t, s.unit(gtinA, "X"), "reject:aggregation.child_product")
	out := s.cmd(Command{Kind: CloseAggregation})
	if out.Err != nil || len(out.Aggregations) != 1 {
		t.Fatalf("%+v", out)
	}
	ag := out.Aggregations[0]
	want := []string{unitKey(gtinPart, "P1"), unitKey(gtinPart, "P2"), unitKey(gtinPart, "P3")}
	if ag.Mode != ModeBuild || ag.Action != wire.AggAdd || ag.Parent != unitKey(gtinBike, "F1") || ag.ClosedBy != wire.ClosedByCommand || !slices.Equal(ag.Children, want) {
		t.Fatalf("%+v", ag)
	}
	if out := s.cmd(Command{Kind: CloseAggregation}); !errors.Is(out.Err, ErrNothingOpen) {
		t.Fatalf("close with nothing open: %v", out.Err)
	}
	s.unit(gtinBike, "F2")
	s.unit(gtinPart, "P9")
	if out := s.cmd(Command{Kind: CancelAggregation}); out.Err != nil || len(out.Aggregations) != 0 || s.st.Open != nil || len(s.idx) != 3 {
		t.Fatalf("cancel: %+v, index %v", out, s.idx)
	}
}

func TestIdle(t *testing.T) {
	s := newStation(t, "d", "receive", memIndex{}, receivingRules(t))
	s.cfg.Idle = 10 * time.Minute
	s.cfg.Documents = []Pattern{mustPattern(t, wire.DocOperator, `BADGE-(?P<value>[0-9]+)`, "")}
	s.read("BADGE-1", nil, "")
	s.read("PO-1001", nil, "")
	s.step(Input{Time: t0.Add(5 * time.Minute), Read: &Read{Raw: "(01)" + gtinA, Fields: map[string]string{"gtin": gtinA}, Verdict: wire.Accepted}})
	if out := s.step(Input{Time: t0.Add(14 * time.Minute)}); out.Next != nil || len(out.Contexts) != 0 {
		t.Fatalf("tick within idle: %+v", out)
	}
	out := s.step(Input{Time: t0.Add(16 * time.Minute)})
	if len(out.Contexts) != 1 || out.Contexts[0].Cause != wire.CauseIdle || out.Contexts[0].Context != nil || s.st.Context != nil || s.st.Order != nil {
		t.Fatalf("idle: %+v, state %+v", out, s.st)
	}
	// The progress is in the index: the order resumes.
	s.read("PO-1001", nil, "")
	if s.st.Order.Lines[0].Counted != 1 {
		t.Fatalf("resumed %+v", s.st.Order)
	}
	// A document after an idle spell: the idle event, then the document's.
	out = s.step(Input{Time: t0.Add(time.Hour), Read: &Read{Raw: "BADGE-2"}})
	if len(out.Contexts) != 2 || out.Contexts[0].Cause != wire.CauseIdle || out.Contexts[1].Cause != wire.CauseDocument ||
		!maps.Equal(out.Contexts[1].Context, map[string]string{"operator": "2"}) {
		t.Fatalf("%+v", out.Contexts)
	}
	// An open aggregation outlives the idle time.
	s.st.Mode = ModePack
	s.sscc(ssccOne)
	s.step(Input{Time: s.now.Add(time.Hour)})
	if s.st.Open == nil || s.st.Context != nil {
		t.Fatalf("after idle: %+v", s.st)
	}
}

func TestDocumentsAndCommands(t *testing.T) {
	s := newStation(t, "d", "receive", memIndex{}, receivingRules(t))
	s.cfg.Documents = []Pattern{
		mustPattern(t, wire.DocLocation, `LOC-(?P<value>[A-Z0-9]*)`, "dock"),
		mustPattern(t, wire.DocCancel, `CANCEL`, ""),
		mustPattern(t, wire.DocClose, `CLOSE`, ""),
	}
	s.cfg.DocumentSignal = SignalWarn
	out := s.read("LOC-D4", nil, "")
	if out.Signal != SignalWarn || s.st.Context["dock"] != "D4" || s.st.Last != "dock" {
		t.Fatalf("%+v %+v", out, s.st)
	}
	s.read("PO-1001", nil, "")
	s.read("CANCEL", nil, "") // undoes the PO
	if _, ok := s.st.Context["order"]; ok || s.st.Order != nil || s.st.Context["dock"] != "D4" {
		t.Fatalf("cancel: %+v", s.st)
	}
	if out := s.read("CANCEL", nil, ""); out.Signal != SignalBad || out.Next != nil || len(out.Contexts) != 0 {
		t.Fatalf("second cancel: %+v", out)
	}
	if out := s.read("CLOSE", nil, ""); out.Signal != SignalBad || out.Next != nil {
		t.Fatalf("close with nothing: %+v", out)
	}
	s.read("LOC-", nil, "") // an empty value clears the key
	if s.st.Context != nil {
		t.Fatalf("%+v", s.st.Context)
	}
	if out := s.read("LOC-"+strings.Repeat("X", 300), nil, ""); out.Signal != SignalBad || out.Next != nil {
		t.Fatalf("long value: %+v", out)
	}

	big := map[string]string{}
	for i := range 17 {
		big[string(rune('a'+i))] = "v"
	}
	for _, c := range []struct {
		cmd  Command
		want error
	}{
		{Command{Kind: SetMode, Mode: "dance"}, ErrBadMode},
		{Command{Kind: SetContext, Context: big}, ErrBadContext},
		{Command{Kind: SetContext, Context: map[string]string{"": "x"}}, ErrBadContext},
		{Command{Kind: SetContext, Context: map[string]string{"k": strings.Repeat("x", 257)}}, ErrBadContext},
		{Command{Kind: CancelAggregation}, ErrNothingOpen},
		{Command{Kind: 99}, ErrBadCommand},
	} {
		if out := s.cmd(c.cmd); !errors.Is(out.Err, c.want) || out.Next != nil || out.Signal != SignalBad {
			t.Fatalf("%+v: %+v, want %v", c.cmd, out, c.want)
		}
	}
	out = s.cmd(Command{Kind: SetMode, Mode: ModePack})
	if out.Err != nil || s.st.Mode != ModePack || len(out.Contexts) != 1 || out.Contexts[0].Cause != wire.CauseCommand || out.Contexts[0].Mode != ModePack {
		t.Fatalf("%+v", out)
	}
	out = s.cmd(Command{Kind: SetContext, Context: map[string]string{"order": "PO-2002"}})
	if out.Err != nil || s.st.Order == nil || s.st.Order.Name != "PO-2002" || out.Contexts[0].Context["order"] != "PO-2002" {
		t.Fatalf("%+v", out)
	}
	if out := s.cmd(Command{Kind: SetContext, Context: map[string]string{}}); s.st.Context != nil || s.st.Order != nil || out.Contexts[0].Context != nil {
		t.Fatalf("clear: %+v", out)
	}
}

func TestStateJSON(t *testing.T) {
	st := &State{
		Mode: ModePack, Context: map[string]string{"order": "PO-1", "operator": "7"}, Touched: t0, Last: "order",
		Order: &Progress{Name: "PO-1", Lines: []wire.OrderLine{{Product: gtinA, Expected: 3, Counted: 1}}, Over: 1, Unexpected: 2, WrongSerial: 3, Complete: true},
		Open: &Aggregation{Mode: ModePack, Parent: "gs1:(00)" + ssccOne, Children: []string{"a", "b"}, Opened: t0, Operator: "7",
			Require: Children{Products: []string{gtinCase}, Count: 3}},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, st) {
		t.Fatalf("round trip:\n%+v\n%+v", back, *st)
	}
	c := st.Clone()
	c.Context["x"] = "y"
	c.Order.Lines[0].Counted = 9
	c.Open.Children[0] = "z"
	if st.Context["x"] != "" || st.Order.Lines[0].Counted != 1 || st.Open.Children[0] != "a" {
		t.Fatal("Clone shares memory with the original")
	}
	if b, _ := json.Marshal(&State{Mode: "receive"}); string(b) != `{"mode":"receive"}` {
		t.Fatalf("empty state: %s", b)
	}
	if b, _ := json.Marshal(&Aggregation{}); strings.Contains(string(b), "require") {
		t.Fatalf("no requirement: %s", b)
	}
}

func TestClassify(t *testing.T) {
	rules := &fakeRules{docs: []Pattern{
		mustPattern(t, wire.DocOrder, `PO-[0-9]+`, ""),
		mustPattern(t, wire.DocPick, `X.*`, ""),
	}}
	cfg := Config{Documents: append([]Pattern{mustPattern(t, wire.DocOperator, `X-(?P<value>[0-9]+)`, "badge"), mustPattern(t, wire.DocClose, `CLOSE`, "ignored")}, BuiltinPatterns()...)}
	// A hand-made expression that is not anchored still matches whole reads only.
	unanchored := Config{Documents: []Pattern{{Kind: wire.DocOrder, Match: regexp.MustCompile(`PO`)}}}
	for _, c := range []struct {
		cfg              Config
		raw              string
		fields           map[string]string
		kind, value, key string
	}{
		{cfg, "X-42", nil, wire.DocOperator, "42", "badge"}, // the config before the rules
		{cfg, "X-4a", nil, wire.DocPick, "X-4a", "pick"},
		{cfg, "PO-7", nil, wire.DocOrder, "PO-7", "order"},
		{cfg, "CLOSE", nil, wire.DocClose, "CLOSE", ""},
		{cfg, "(00)" + ssccOne, map[string]string{"sscc": ssccOne}, wire.DocShipment, ssccOne, "shipment"},
		{cfg, "4144012345000009", nil, wire.DocLocation, "4012345000009", "location"}, // check digit 9
		{cfg, "414401234500000925401A", nil, wire.DocLocation, "4012345000009(254)01A", "location"},
		{cfg, "\x1d4144012345000009\x1d254B-7", nil, wire.DocLocation, "4012345000009(254)B-7", "location"},
		{cfg, "(414)4012345000009(254)D3", nil, wire.DocLocation, "4012345000009(254)D3", "location"},
		{cfg, "https://id.example.com/414/4012345000009/254/D3?x=1", nil, wire.DocLocation, "4012345000009(254)D3", "location"},
		{cfg, "4144012345000008", nil, "", "", ""}, // bad check digit
		{cfg, "(01)" + gtinA + "(21)1", map[string]string{"gtin": gtinA, "serial": "1"}, "", "", ""},
		{Config{}, "(00)" + ssccOne, map[string]string{"sscc": ssccOne}, "", "", ""}, // built-ins not enabled
		{unanchored, "xPOx", nil, "", "", ""},
	} {
		kind, value, key, ok := Classify(c.cfg, rules, c.raw, c.fields)
		if kind != c.kind || value != c.value || key != c.key || ok != (c.kind != "") {
			t.Errorf("Classify(%q) = %q %q %q %v, want %q %q %q", c.raw, kind, value, key, ok, c.kind, c.value, c.key)
		}
	}
	if _, err := NewPattern(wire.DocOrder, "(", ""); err == nil {
		t.Error("NewPattern took a bad expression")
	}
}

func TestIndexKeys(t *testing.T) {
	if got := OrderKey("dock1", "PO/1 2"); got != "workflow/order/dock1/PO%2F1%202" {
		t.Error(got)
	}
	if got := CountedKey("dock1", "PO/1", "gs1:(00)1"); got != "workflow/counted/dock1/PO%2F1/gs1:(00)1" {
		t.Error(got)
	}
	if got := ChildKey("gs1:(00)1"); got != "workflow/child/gs1:(00)1" {
		t.Error(got)
	}
}
