package rules_test

import (
	"crypto/ed25519"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/rules"
	"github.com/scangw/scangw/station/workflow"
)

// load makes an engine with the given sets loaded, in order.
func load(t testing.TB, seen rules.Seen, sets ...map[string]any) *rules.Engine {
	t.Helper()
	e, err := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}, Site: "dc-east", Gateway: "gw-01", Seen: seen, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sets {
		env, err := rules.Sign(mustJSON(t, m), key(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Load(env); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// gatewaySet is an empty gateway-scoped set to add fields to.
func gatewaySet() map[string]any {
	return map[string]any{"schema": 1, "version": 7, "issued": "2026-06-02T00:00:00Z", "scope": "gateway", "gateway": "gw-01"}
}

func TestDocuments(t *testing.T) {
	site := baseSet()
	site["documents"] = []any{
		map[string]any{"kind": "order", "pattern": "PO-[0-9]{4}"},
		map[string]any{"kind": "operator", "pattern": "BADGE:(?P<value>[0-9]+)"},
		map[string]any{"kind": "location", "pattern": "DOCK-(?P<value>[0-9]{2})", "key": "dock"},
	}
	gw := gatewaySet()
	gw["documents"] = []any{map[string]any{"kind": "close", "pattern": "#CLOSE|#END"}}

	e := load(t, nil, baseSet())
	if d := e.Documents(); len(d) != 0 {
		t.Errorf("a set without documents has %d", len(d))
	}
	e = load(t, nil, site, gw)
	docs := e.Documents()
	var kinds, keys []string
	for _, p := range docs {
		kinds, keys = append(kinds, p.Kind), append(keys, p.Key)
	}
	if !slices.Equal(kinds, []string{"order", "operator", "location", "close"}) || !slices.Equal(keys, []string{"", "", "dock", ""}) {
		t.Fatalf("kinds %v keys %v: want the site's then the gateway's", kinds, keys)
	}
	if n := e.Current(rules.ScopeSite).Stats().Documents; n != 3 {
		t.Errorf("Stats().Documents = %d", n)
	}
	// Patterns match whole reads only.
	for read, want := range map[string]int{"PO-1234": 0, "PO-12345": -1, "xPO-1234": -1, "BADGE:0042": 1, "DOCK-07": 2, "#END": 3, "#CLOSE": 3, "#ENDS": -1} {
		got := -1
		for i, p := range docs {
			if p.Match.MatchString(read) {
				got = i
				break
			}
		}
		if got != want {
			t.Errorf("%q matched pattern %d, want %d", read, got, want)
		}
	}
	m := docs[1].Match.FindStringSubmatch("BADGE:0042")
	if i := docs[1].Match.SubexpIndex("value"); i < 0 || m[i] != "0042" {
		t.Errorf("value group: %v", m)
	}
	if a := testing.AllocsPerRun(100, func() { e.Documents() }); a != 0 {
		t.Errorf("Documents allocates %v times a call", a)
	}
	// A gateway set alone, and the site's patterns after it is replaced.
	e = load(t, nil, gw)
	if d := e.Documents(); len(d) != 1 || d[0].Kind != "close" {
		t.Errorf("gateway only: %v", d)
	}
	if e.Documents()[0].Match.MatchString("PO-1234") {
		t.Error("a close code matched an order")
	}
}

func TestOrder(t *testing.T) {
	gtinC := gtin("0950600013437")
	site := baseSet()
	site["expected"] = append(site["expected"].([]any),
		map[string]any{"order": "PO-1", "policy": "reject", "gtin": gtinA, "serials": []any{"A00001", "A00002", "A00003"}},
		map[string]any{"order": "PO-1", "gtin": gtinA[1:], "serials": []any{"A00003", "A00004"}}, // A00003 twice: expected once
		map[string]any{"order": "PO-1", "sku": "PUMP-200", "quantity": 12},
		map[string]any{"order": "PO-1", "sku": "PUMP-200", "quantity": 3},
		map[string]any{"order": "PO-1", "serials": []any{"SN-1", "SN-2"}},
		map[string]any{"order": "PO-1", "gtin": gtinB, "serials": []any{"11", "12", "13"}, "quantity": 2},
		map[string]any{"order": "PO-2", "gtin": gtinC, "quantity": 5},
		map[string]any{"order": "PO-2", "gtin": gtinC},
	)
	e := load(t, nil, site)

	o, ok := e.Order("PO-1")
	if !ok || o.Name != "PO-1" || o.Policy != rules.Reject {
		t.Fatalf("PO-1: %v %+v", ok, o)
	}
	want := []workflow.Line{
		{Product: gtinA, Quantity: 4, Serials: true},
		{Product: "PUMP-200", Quantity: 15},
		{Product: "", Quantity: 2, Serials: true},
		{Product: gtinB, Quantity: 2, Serials: true},
	}
	if !slices.Equal(o.Lines, want) {
		t.Errorf("lines\n %+v\nwant\n %+v", o.Lines, want)
	}
	if o.Listed == nil {
		t.Fatal("no Listed for an ASN with serials")
	}
	for _, tc := range []struct {
		product, serial string
		want            bool
	}{
		{gtinA, "A00001", true}, {gtinA, "A00004", true}, {gtinA, "A00009", false},
		{gtinB, "13", true}, {gtinB, "A00001", false},
		{"", "SN-2", true}, {gtinA, "SN-2", false}, // a line's own serials only
		{"", "A00001", false}, {"PUMP-200", "P1", false},
	} {
		if got := o.Listed(tc.product, tc.serial); got != tc.want {
			t.Errorf("Listed(%q, %q) = %v", tc.product, tc.serial, got)
		}
	}
	if a := testing.AllocsPerRun(100, func() { e.Order("PO-1"); o.Listed(gtinA, "A00002") }); a != 0 {
		t.Errorf("Order and Listed allocate %v times a call", a)
	}

	o, ok = e.Order("PO-2")
	if !ok || o.Policy != rules.Warn || o.Listed != nil || !slices.Equal(o.Lines, []workflow.Line{{Product: gtinC, Quantity: 0}}) {
		t.Errorf("PO-2 (an entry without quantity expects any number): %+v", o)
	}
	// Orders of sets written before quantities.
	o, _ = e.Order("PO-1234")
	if !slices.Equal(o.Lines, []workflow.Line{{Product: gtinA, Quantity: 2, Serials: true}, {Quantity: 1, Serials: true}}) || o.Policy != rules.Warn {
		t.Errorf("PO-1234: %+v", o)
	}
	if _, ok := e.Order("PO-404"); ok {
		t.Error("an order no set names")
	}
	if _, ok := e.Order(""); ok {
		t.Error("the empty order")
	}
	if n := e.Current(rules.ScopeSite).Stats().Orders; n != 4 {
		t.Errorf("Stats().Orders = %d", n)
	}
}

// A gateway set's order replaces the site set's order of that name, for
// Order and for judging alike; the site's other orders stay.
func TestGatewayOrderReplacesSites(t *testing.T) {
	gw := gatewaySet()
	gw["expected"] = []any{map[string]any{"order": "PO-1234", "policy": "reject", "gtin": gtinA, "serials": []any{"ABC124", "ABC777"}}}
	e := load(t, nil, baseSet(), gw)
	o, ok := e.Order("PO-1234")
	if !ok || o.Policy != rules.Reject || !slices.Equal(o.Lines, []workflow.Line{{Product: gtinA, Quantity: 2, Serials: true}}) {
		t.Errorf("PO-1234: %+v", o)
	}
	if o.Listed(gtinA, "ABC123") || !o.Listed(gtinA, "ABC777") {
		t.Error("Listed answers for the site's order")
	}
	if _, ok := e.Order("PO-9"); !ok {
		t.Error("the site's other order is lost")
	}
	ctx := map[string]string{"order": "PO-1234"}
	for serial, want := range map[string]string{"ABC777": station.Accepted, "ABC124": station.Accepted, "ABC123": station.Rejected} {
		s := scan("]d2", gs1Scan(gtinA, "270131", "ABC1", serial), "receive", ctx)
		e.Validate(s)
		if s.Verdict != want || want == station.Rejected && !slices.Equal(codes(s.Reasons), []string{rules.ReasonUnexpectedSerial}) {
			t.Errorf("%s: %s %v", serial, s.Verdict, fmtReasons(s.Reasons))
		}
	}
}

// Children: a parent product's requirement, the gateway set's entry
// replacing the site's for the same product, GTINs as the 14 digits
// scans carry, and no allocation per call.
func TestChildren(t *testing.T) {
	pallet, kit := gtin("0950600013441"), gtin("0950600013442")
	site := baseSet()
	site["products"] = append(site["products"].([]any),
		map[string]any{"gtin": pallet[1:], "children": map[string]any{"products": []any{gtinA, "PUMP-200"}, "count": 12}},
		map[string]any{"gtin": kit, "children": map[string]any{"products": []any{gtinB}}},
		map[string]any{"sku": "BIKE-1", "children": map[string]any{"count": 3}},
	)
	e := load(t, nil, site)
	for parent, want := range map[string]workflow.Children{
		pallet:   {Products: []string{gtinA, "PUMP-200"}, Count: 12},
		kit:      {Products: []string{gtinB}},
		"BIKE-1": {Count: 3},
	} {
		if c, ok := e.Children(parent); !ok || !slices.Equal(c.Products, want.Products) || c.Count != want.Count {
			t.Errorf("%s: %v %+v, want %+v", parent, ok, c, want)
		}
	}
	for _, parent := range []string{"", gtinA, pallet[1:], "bike-1"} {
		if c, ok := e.Children(parent); ok {
			t.Errorf("%q requires %+v", parent, c)
		}
	}
	if a := testing.AllocsPerRun(100, func() { e.Children(pallet) }); a != 0 {
		t.Errorf("Children allocates %v times a call", a)
	}
	// A product of children only is a product with a rule: no unknown_product.
	s := scan("", "(01)"+kit+"(21)K1", "receive", nil)
	e.Validate(s)
	if s.Verdict != station.Accepted {
		t.Errorf("kit: %s %v", s.Verdict, fmtReasons(s.Reasons))
	}

	gw := gatewaySet()
	gw["products"] = []any{map[string]any{"gtin": pallet, "children": map[string]any{"count": 6}}}
	e = load(t, nil, site, gw)
	if c, _ := e.Children(pallet); c.Products != nil || c.Count != 6 {
		t.Errorf("the gateway's pallet: %+v, want its own whole", c)
	}
	if c, ok := e.Children(kit); !ok || !slices.Equal(c.Products, []string{gtinB}) {
		t.Errorf("the site's kit is lost: %+v", c)
	}
	if _, ok := load(t, nil, gw).Children(kit); ok {
		t.Error("a gateway set alone has the site's kit")
	}
}

// returnsSet is baseSet with shipped lists: ACME got SHIP0001-2 of gtinA,
// and SHIP0003 on order SO-1; the always-list says every gtinA serial
// made; PUMP-200 went out on SO-2 under a warning policy.
func returnsSet() map[string]any {
	m := baseSet()
	m["shipped"] = []any{
		map[string]any{"customer": "ACME", "gtin": gtinA, "serials": []any{"SHIP0001", "SHIP0002"}},
		map[string]any{"customer": "ACME", "order": "SO-1", "gtin": gtinA, "serials": []any{"SHIP0003"}},
		map[string]any{"gtin": gtinA, "serials": []any{"SHIP0001", "SHIP0002", "SHIP0003", "SHIP0004"}, "reason": "counterfeit", "message": "not ours"},
		map[string]any{"order": "SO-2", "sku": "PUMP-200", "serials": []any{pumpSerial("P21234567")}, "policy": "warn", "reason": "not_on_order"},
	}
	return m
}

// pumpSerial appends the mod 37-2 check character PUMP-200's rule wants.
func pumpSerial(s string) string {
	c, err := checkdigit.Mod37Radix2(s)
	if err != nil {
		panic(err)
	}
	return s + string(c)
}

func TestReturns(t *testing.T) {
	unit := func(serial string) string { return gs1Scan(gtinA, "270131", "ABC1", serial) }
	key := func(serial string) string { return "gs1:(01)" + gtinA + "(21)" + serial }
	acme := map[string]string{"customer": "ACME"}
	dupWarn := func(m map[string]any) { m["duplicates"].(map[string]any)["return"] = "warn" }
	dupReject := func(m map[string]any) { m["duplicates"].(map[string]any)["return"] = "reject" }
	gwShipped := map[string]any{"shipped": []any{map[string]any{"customer": "ACME", "gtin": gtinA, "serials": []any{"SHIP0001"}}}}
	tests := []struct {
		name    string
		set     func() map[string]any
		edit    func(m map[string]any)
		gateway map[string]any
		data    string
		mode    string
		ctx     map[string]string
		last    string // the unit's last movement
		verdict string
		codes   []string
		message string // of the first reason, if given
	}{
		{name: "shipped to the customer", set: returnsSet, data: unit("SHIP0001"), ctx: acme, verdict: station.Accepted},
		{name: "shipped on the order, to the customer", set: returnsSet, data: unit("SHIP0003"), ctx: acme, verdict: station.Accepted},
		{name: "made, but not shipped to this customer", set: returnsSet, data: unit("SHIP0004"), ctx: acme,
			verdict: station.Rejected, codes: []string{rules.ReasonNotShipped}, message: "serial SHIP0004 of GTIN " + gtinA + " was not shipped to customer ACME"},
		{name: "never shipped to anyone", set: returnsSet, data: unit("FAKE0009"), ctx: acme,
			verdict: station.Rejected, codes: []string{rules.ReasonNotShipped, "counterfeit"}},
		{name: "the always-list without a context", set: returnsSet, data: unit("SHIP0004"), verdict: station.Accepted},
		{name: "counterfeit without a context", set: returnsSet, data: unit("FAKE0009"), verdict: station.Rejected, codes: []string{"counterfeit"}, message: "not ours"},
		{name: "not on the order in context", set: returnsSet, data: unit("SHIP0001"), ctx: map[string]string{"order": "SO-1"},
			verdict: station.Rejected, codes: []string{rules.ReasonNotShipped}, message: "serial SHIP0001 of GTIN " + gtinA + " was not shipped on order SO-1"},
		{name: "on the order in context", set: returnsSet, data: unit("SHIP0003"), ctx: map[string]string{"order": "SO-1"}, verdict: station.Accepted},
		{name: "another customer has no list", set: returnsSet, data: unit("SHIP0004"), ctx: map[string]string{"customer": "Globex"}, verdict: station.Accepted},
		{name: "a product no list names", set: returnsSet, data: gs1Scan(gtinB, "", "", "12345674"), ctx: acme, verdict: station.Accepted},
		{name: "a unit without a serial", set: returnsSet, data: gtinA, ctx: acme, verdict: station.Rejected,
			codes: []string{rules.ReasonMissingSerial, rules.ReasonMissingLot, rules.ReasonMissingExpiry}},
		{name: "only in mode return", set: returnsSet, data: unit("FAKE0009"), mode: "receive", ctx: acme, verdict: station.Accepted},
		{name: "plain serial of a sku, warn policy and own reason", set: returnsSet, data: pumpSerial("P21234568"), ctx: map[string]string{"sku": "PUMP-200", "order": "SO-2"},
			verdict: station.Warning, codes: []string{"not_on_order"}, message: "serial " + pumpSerial("P21234568") + " of SKU PUMP-200 was not shipped on order SO-2"},
		{name: "plain serial of a sku on the order", set: returnsSet, data: pumpSerial("P21234567"), ctx: map[string]string{"sku": "PUMP-200", "order": "SO-2"},
			verdict: station.Accepted},

		{name: "already returned", set: returnsSet, data: unit("SHIP0001"), ctx: acme, last: "return",
			verdict: station.Rejected, codes: []string{rules.ReasonAlreadyReturned}},
		{name: "returned after it shipped again", set: returnsSet, data: unit("SHIP0001"), ctx: acme, last: "ship", verdict: station.Accepted},
		{name: "already returned replaces the duplicate", set: returnsSet, edit: dupWarn, data: unit("SHIP0001"), last: "return",
			verdict: station.Rejected, codes: []string{rules.ReasonAlreadyReturned}},
		{name: "already returned takes the stricter policy", set: returnsSet,
			edit: func(m map[string]any) { dupReject(m); m["returns"] = map[string]any{"already_returned": "warn"} },
			data: unit("SHIP0001"), last: "return", verdict: station.Rejected, codes: []string{rules.ReasonAlreadyReturned}},
		{name: "already returned warns by policy", set: returnsSet, edit: func(m map[string]any) { m["returns"] = map[string]any{"already_returned": "warn"} },
			data: unit("SHIP0001"), last: "return", verdict: station.Warning, codes: []string{rules.ReasonAlreadyReturned}},
		{name: "already returned allowed: the duplicate policy as before", set: returnsSet,
			edit: func(m map[string]any) { dupWarn(m); m["returns"] = map[string]any{"already_returned": "allow"} },
			data: unit("SHIP0001"), last: "return", verdict: station.Warning, codes: []string{rules.ReasonDuplicate}},
		{name: "returns without shipped lists", set: baseSet, edit: func(m map[string]any) { m["returns"] = map[string]any{} },
			data: unit("SHIP0001"), last: "return", verdict: station.Rejected, codes: []string{rules.ReasonAlreadyReturned}},
		{name: "a set from before returns: no check", set: baseSet, data: unit("SHIP0001"), last: "return", verdict: station.Accepted},
		{name: "a set from before returns: its duplicate policy", set: baseSet, edit: dupReject, data: unit("SHIP0001"), last: "return",
			verdict: station.Rejected, codes: []string{rules.ReasonDuplicate}},
		{name: "one finding over both sets", set: returnsSet, gateway: map[string]any{"duplicates": map[string]any{"return": "reject"}},
			data: unit("SHIP0001"), last: "return", verdict: station.Rejected, codes: []string{rules.ReasonAlreadyReturned}},
		{name: "a gateway set's shipped list applies too", set: baseSet, gateway: gwShipped,
			data: unit("SHIP0002"), ctx: acme, verdict: station.Rejected, codes: []string{rules.ReasonNotShipped}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.set()
			if tc.edit != nil {
				tc.edit(m)
			}
			sets := []map[string]any{m}
			if tc.gateway != nil {
				gw := gatewaySet()
				for k, v := range tc.gateway {
					gw[k] = v
				}
				sets = append(sets, gw)
			}
			seen := rules.NewMemorySeen(10)
			if tc.last != "" {
				seen.Mark(key("SHIP0001"), tc.last, scanTime.Add(-time.Hour))
			}
			e := load(t, seen, sets...)
			mode := tc.mode
			if mode == "" {
				mode = "return"
			}
			s := scan("", tc.data, mode, tc.ctx)
			e.Validate(s)
			if s.Verdict != tc.verdict || !slices.Equal(codes(s.Reasons), append([]string{}, tc.codes...)) {
				t.Errorf("verdict %s, reasons %v; want %s, %v%s", s.Verdict, codes(s.Reasons), tc.verdict, tc.codes, fmtReasons(s.Reasons))
			}
			if tc.message != "" && (len(s.Reasons) == 0 || s.Reasons[0].Message != tc.message) {
				t.Errorf("message: %s", fmtReasons(s.Reasons))
			}
		})
	}
}

// A return is recorded, so the same unit returned again is caught; pack,
// build, unpack and assign scans move nothing and are not recorded.
func TestReturnRecordedPackNot(t *testing.T) {
	seen := rules.NewMemorySeen(10)
	e := load(t, seen, returnsSet())
	data := gs1Scan(gtinA, "270131", "ABC1", "SHIP0002")
	for _, mode := range []string{"pack", "build", "unpack", "assign"} {
		s := scan("", data, mode, nil)
		e.Validate(s)
		if s.Verdict != station.Accepted {
			t.Fatalf("%s: %s %v", mode, s.Verdict, fmtReasons(s.Reasons))
		}
		if err := e.Record(s); err != nil || seen.Len() != 0 {
			t.Fatalf("%s scan recorded: %v, len %d", mode, err, seen.Len())
		}
	}
	first := scan("", data, "return", map[string]string{"customer": "ACME"})
	e.Validate(first)
	if first.Verdict != station.Accepted {
		t.Fatalf("first return: %s %v", first.Verdict, fmtReasons(first.Reasons))
	}
	if err := e.Record(first); err != nil {
		t.Fatal(err)
	}
	again := scan("", data, "return", map[string]string{"customer": "ACME"})
	e.Validate(again)
	if again.Verdict != station.Rejected || !slices.Equal(codes(again.Reasons), []string{rules.ReasonAlreadyReturned}) {
		t.Errorf("second return: %s %v", again.Verdict, fmtReasons(again.Reasons))
	}
}

// The shipped example is valid, and its new fields judge as documented
// (its entry naming a customer and an order counts its serial twice).
func TestExampleWorkflow(t *testing.T) {
	b, err := os.ReadFile("testdata/example.json")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Check(b)
	if err != nil {
		t.Fatal(err)
	}
	if st := set.Stats(); st.Documents != 6 || st.ShippedKeys != 8 || st.Orders != 2 {
		t.Errorf("stats %+v", st)
	}
	env, _ := rules.Sign(b, key(1))
	e, _ := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}, Site: "dc-east", Seen: rules.NewMemorySeen(8)})
	if _, err := e.Load(env); err != nil {
		t.Fatal(err)
	}
	if o, ok := e.Order("PO-2000"); !ok || o.Policy != rules.Reject || !slices.Equal(o.Lines, []workflow.Line{{Product: "04006381333931", Quantity: 24}}) {
		t.Errorf("PO-2000: %+v", o)
	}
	if d := e.Documents(); len(d) != 6 || !d[0].Match.MatchString("PO-1234") || d[3].Key != "dock" {
		t.Errorf("documents %+v", d)
	}
	if c, ok := e.Children("09506000134406"); !ok || c.Count != 12 || !slices.Equal(c.Products, []string{gtinA}) {
		t.Errorf("the case's children: %+v", c)
	}
	s := scan("", gs1Scan(gtinA, "270131", "ABC1", "SHIP0004"), "return", map[string]string{"customer": "ACME"})
	e.Validate(s)
	if !slices.Equal(codes(s.Reasons), []string{rules.ReasonNotShipped}) {
		t.Errorf("return: %s %v", s.Verdict, fmtReasons(s.Reasons))
	}
}
