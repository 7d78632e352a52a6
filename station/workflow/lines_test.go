package workflow

import (
	"testing"

	"github.com/scangw/scangw/station/wire"
)

// TestOpenAndAnyProductLines: a line of Quantity 0 takes any number of
// its product (never an over-scan, and no completion from it), and a line
// of serials of any product (Product "") counts the units it lists.
func TestOpenAndAnyProductLines(t *testing.T) {
	listed := map[string]bool{"S1": true, "S2": true}
	rules := &fakeRules{orders: map[string]Order{"PO-9": {
		Name: "PO-9",
		Lines: []Line{
			{Product: "09506000134352", Quantity: 0},
			{Product: "", Quantity: 2, Serials: true},
		},
		Listed: func(product, serial string) bool { return product == "" && listed[serial] },
	}}}
	s := newStation(t, "d1", "receive", memIndex{}, rules)
	s.cmd(Command{Kind: SetContext, Context: map[string]string{"order": "PO-9"}})
	g := func(serial string) map[string]string {
		return map[string]string{"gtin": "09506000134352", "serial": serial}
	}
	other := func(serial string) map[string]string {
		return map[string]string{"gtin": "09506000134369", "serial": serial}
	}
	for i, serial := range []string{"A1", "A2", "A3"} {
		out := s.read("a"+serial, g(serial), "u/"+serial)
		if out.Order == nil || out.Order.Last.Outcome != wire.OrderCounted || out.Order.Status != wire.OrderProgress {
			t.Fatalf("open line, unit %d: %+v", i, out.Order)
		}
	}
	out := s.read("bS1", other("S1"), "v/S1")
	if out.Order.Last.Outcome != wire.OrderCounted || out.Order.Status != wire.OrderProgress {
		t.Fatalf("a listed serial of another product: %+v", out.Order)
	}
	if out := s.read("bS9", other("S9"), "v/S9"); out.Order.Last.Outcome != wire.OrderUnexpected {
		t.Fatalf("an unlisted serial of another product: %+v", out.Order)
	}
	out = s.read("bS2", other("S2"), "v/S2")
	if out.Order.Status != wire.OrderComplete || out.Order.Counted != 5 || out.Order.Remaining != 0 {
		t.Fatalf("the serial line met: %+v, want complete (the open line never holds it back)", out.Order)
	}
}
