package configs

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/scangw/scangw/station/serials"
)

// station adds keys (indented as a station's) to minimal's only station.
func station(keys string) string { return minimal + keys }

// serialErr is the serials parser's own error for template, which
// serials[].template must repeat.
func serialErr(template string) string {
	_, err := serials.ParseOptions{MaxLen: defaultSerialMax}.Parse(template)
	if err == nil {
		panic("template " + template + " parses")
	}
	return err.Error()
}

const (
	scheme  = "serials: [{name: unit, template: 'U{seq:6}'}]\n"
	printer = "printers: [{id: zebra-1, addr: '10.0.4.31:9100'}]\n"
)

var workflowBadCases = []struct {
	name  string
	yaml  string
	paths []string // exactly the problem paths, in order
	text  string   // must appear in the error
}{
	// documents
	{"document pattern", station("    documents: [{kind: order, pattern: 'PO-[0-9]+'}, {kind: operator, pattern: 'EMP(['}]\n"),
		[]string{"stations[0].documents[1].pattern"}, "stations[0].documents[1].pattern: not a regular expression: error parsing regexp"},
	{"document pattern missing", station("    documents: [{kind: order}]\n"),
		[]string{"stations[0].documents[0].pattern"}, "pattern: required"},
	{"document pattern escapes its anchors", station(`    documents: [{kind: order, pattern: '\QPO-'}]` + "\n"),
		[]string{"stations[0].documents[0].pattern"}, `cannot be matched as a whole: an unclosed \Q? end it with \E`},
	{"document pattern that only anchored compiles", station("    documents: [{kind: order, pattern: 'x)|(y'}]\n"),
		[]string{"stations[0].documents[0].pattern"}, "not a regular expression"},
	{"document kind", station("    documents: [{kind: invoice, pattern: 'INV[0-9]+'}]\n"),
		[]string{"stations[0].documents[0].kind"}, "kind: must be one of order, pick, shipment, location, operator, parent, close, cancel, new_serial"},
	{"document key", station("    documents: [{kind: order, pattern: 'PO[0-9]+', key: Order-No}]\n"),
		[]string{"stations[0].documents[0].key"}, "key: must match ^[a-z][a-z0-9_]{0,63}$"},
	{"control codes set no key", station("    documents: [{kind: close, pattern: CLOSE, key: done}, {kind: cancel, pattern: UNDO, key: x}, {kind: new_serial, pattern: NEW, key: y}]\n"),
		[]string{"stations[0].documents[0].key", "stations[0].documents[1].key", "stations[0].documents[2].key"},
		"stations[0].documents[0].key: a close code sets no context key: leave key out"},
	{"gateway document", minimal + "documents: [{kind: order, pattern: '('}]\n",
		[]string{"documents[0].pattern"}, "documents[0].pattern: not a regular expression"},
	{"documents not a list", minimal + "documents: {kind: order}\n",
		[]string{"documents"}, "want a list"},

	// station context keys
	{"context idle negative", station("    context_idle: -1s\n"),
		[]string{"stations[0].context_idle"}, "must not be negative"},
	{"context idle not a duration", station("    context_idle: 30\n"),
		[]string{"stations[0].context_idle"}, "want a number with a unit"},
	{"document signal", station("    document_signal: beep\n"),
		[]string{"stations[0].document_signal"}, "document_signal: must be one of good, warn, bad"},

	// orders
	{"policy for every mode", station("    orders: {unexpected: maybe}\n"),
		[]string{"stations[0].orders.unexpected"}, "stations[0].orders.unexpected: must be one of warn, reject"},
	{"policy of a mode", station("    orders: {over_scan: {receive: block}}\n"),
		[]string{"stations[0].orders.over_scan.receive"}, "stations[0].orders.over_scan.receive: must be one of warn, reject"},
	{"policy of an unknown mode", station("    orders: {over_scan: {recieve: reject}}\n"),
		[]string{"stations[0].orders.over_scan.recieve"}, "recieve: not a mode: want one of receive, ship,"},
	{"policies reported in key order", station("    orders: {over_scan: {ship: x, count: y, receive: z}}\n"),
		[]string{"stations[0].orders.over_scan.count", "stations[0].orders.over_scan.receive", "stations[0].orders.over_scan.ship"}, ""},
	{"policy a list", station("    orders: {over_scan: [reject]}\n"),
		[]string{"stations[0].orders.over_scan"}, "stations[0].orders.over_scan: want a policy (warn, reject) or a mapping of mode to policy, like {receive: reject} (line 7)"},
	{"policy of a mode a list", station("    orders: {unexpected: {receive: [reject]}}\n"),
		[]string{"stations[0].orders.unexpected"}, "want a policy (warn, reject) or a mapping"},
	{"orders unknown key", station("    orders: {overscan: reject}\n"),
		[]string{"stations[0].orders.overscan"}, "unknown key; want one of over_scan, unexpected"},

	// aggregation
	{"max children", station("    aggregation: {max_children: 100001}\n"),
		[]string{"stations[0].aggregation.max_children"}, "must be 1 to 5000"},
	{"child count over max children", station("    aggregation: {child_count: 13, max_children: 12}\n"),
		[]string{"stations[0].aggregation.child_count"}, "child_count: must be 0 to max_children (12)"},
	{"child count negative", station("    aggregation: {child_count: -1}\n"),
		[]string{"stations[0].aggregation.child_count"}, "must be 0 to max_children (1000)"},
	{"child products", station(`    aggregation: {child_products: ["", "09506000134353", "9506000134352", "09506000134352", "PUMP-200"]}` + "\n"),
		[]string{"stations[0].aggregation.child_products[0]", "stations[0].aggregation.child_products[1]", "stations[0].aggregation.child_products[2]"},
		`child_products[2]: a GTIN-13: write it as the GTIN-14 scans carry, "09506000134352"`},

	// epcis
	{"station enables epcis", station("    epcis: {enabled: true}\n"),
		[]string{"stations[0].epcis"}, "a station sets only read_point and biz_location"},
	{"station sets epc form", station("    epcis: {epc_form: urn, company_prefix_length: 7}\n"),
		[]string{"stations[0].epcis"}, "are the gateway's (epcis)"},
	{"read point not an SGLN", station("    epcis: {read_point: '0614141073467', biz_location: 'urn:epc:id:sgln:0614141.0734.0'}\n"),
		[]string{"stations[0].epcis.read_point", "stations[0].epcis.biz_location"},
		"stations[0].epcis.read_point: must be an SGLN: urn:epc:id:sgln:<company prefix>.<location ref>.<extension>"},
	{"urn without company prefix length", minimal + "epcis: {epc_form: urn}\n",
		[]string{"epcis.company_prefix_length"}, "epcis.company_prefix_length: must be 6 to 12 with epc_form urn"},
	{"company prefix length too long", minimal + "epcis: {epc_form: urn, company_prefix_length: 13}\n",
		[]string{"epcis.company_prefix_length"}, "must be 6 to 12"},
	{"epc form", minimal + "epcis: {epc_form: uri}\n",
		[]string{"epcis.epc_form"}, "epcis.epc_form: must be one of dl, urn"},
	{"gateway read point", minimal + "epcis: {read_point: 'urn:epc:id:sgln:0614141..0'}\n",
		[]string{"epcis.read_point"}, "must be an SGLN"},
	{"epcis on without a read point", minimal + "epcis: {enabled: true}\n",
		[]string{"stations[0].epcis.read_point"}, "stations[0].epcis.read_point: required with epcis.enabled (or give epcis.read_point for every station)"},

	// serials
	{"serial template", minimal + "serials: [{name: unit, template: 'U{seq:6}{bogus}'}]\n",
		[]string{"serials[0].template"}, "serials[0].template: " + serialErr("U{seq:6}{bogus}")},
	{"serial template too long for max length", minimal + "serials: [{name: unit, template: 'UNIT{seq:10}', max_length: 12}]\n",
		[]string{"serials[0].template"}, func() string {
			_, err := serials.ParseOptions{MaxLen: 12}.Parse("UNIT{seq:10}")
			return err.Error()
		}()},
	{"serial template missing", minimal + "serials: [{name: unit}]\n",
		[]string{"serials[0].template"}, "serials[0].template: required"},
	{"serial name", minimal + "serials: [{template: 'U{seq:6}'}, {name: 'a b', template: 'U{seq:6}'}]\n",
		[]string{"serials[0].name", "serials[1].name"}, "serials[0].name: required"},
	{"duplicate scheme", minimal + "serials: [{name: unit, template: 'U{seq:6}'}, {name: unit, template: 'V{seq:6}'}]\n",
		[]string{"serials[1].name"}, `serials[1].name: duplicate scheme "unit"`},
	{"serial max length", minimal + "serials: [{name: unit, template: 'U{seq:6}', max_length: 65}]\n",
		[]string{"serials[0].max_length"}, "must be 1 to 64"},

	// printers
	{"printer with neither", minimal + "printers: [{id: zebra-1}]\n",
		[]string{"printers[0]"}, "printers[0]: exactly one of addr (host:port) and device (/dev/usb/lp0) is required"},
	{"printer with both", minimal + "printers: [{id: zebra-1, addr: '10.0.4.31:9100', device: /dev/usb/lp0}]\n",
		[]string{"printers[0]"}, "exactly one of addr"},
	{"printer addr", minimal + "printers: [{id: a, addr: zebra-1}, {id: b, addr: '10.0.4.31:0'}, {id: c, addr: ':9100'}]\n",
		[]string{"printers[0].addr", "printers[1].addr", "printers[2].addr"}, "printers[0].addr: must be host:port, like 192.168.1.50:9100"},
	{"printer device", minimal + "printers: [{id: a, device: usb/lp0}, {id: b, device: /tmp/lp0}, {id: c, device: /dev/../tmp/x}]\n",
		[]string{"printers[0].device", "printers[1].device", "printers[2].device"}, "printers[0].device: must be an absolute path under /dev, like /dev/usb/lp0"},
	{"printer type and retry", minimal + "printers: [{id: a, addr: 'p:9100', type: epl, retry: -1s}]\n",
		[]string{"printers[0].type", "printers[0].retry"}, "printers[0].type: must be one of zpl"},
	{"duplicate printer", minimal + "printers: [{id: zebra-1, addr: 'a:9100'}, {id: zebra-1, addr: 'b:9100'}]\n",
		[]string{"printers[1].id"}, `printers[1].id: duplicate printer "zebra-1"`},
	{"printer without id", minimal + "printers: [{addr: 'a:9100'}, {addr: 'b:9100'}]\n",
		[]string{"printers[0].id", "printers[1].id"}, "printers[0].id: required"},

	// assign
	{"unknown printer", station("    assign: {scheme: unit, printer: zebra-2}\n") + scheme + printer,
		[]string{"stations[0].assign.printer"}, `stations[0].assign.printer: no printer "zebra-2" (printers[].id)`},
	{"unknown scheme", station("    assign: {scheme: units}\n") + scheme,
		[]string{"stations[0].assign.scheme"}, `stations[0].assign.scheme: no serial scheme "units" (serials[].name)`},
	{"printer without scheme", station("    assign: {printer: zebra-1}\n") + printer,
		[]string{"stations[0].assign.scheme"}, "required when assign sets printer, label or verify"},
	{"mode assign without scheme", strings.Replace(minimal, "- id: st1", "- id: st1\n    mode: assign", 1),
		[]string{"stations[0].mode"}, "stations[0].mode: mode assign needs assign.scheme"},
	{"label without printer", station("    assign: {scheme: unit, label: /etc/scangw/unit.zpl}\n") + scheme,
		[]string{"stations[0].assign.label"}, "a label needs a printer"},
	{"verify without printer", station("    assign: {scheme: unit, verify: true}\n") + scheme,
		[]string{"stations[0].assign.verify"}, "stations[0].assign.verify: needs a printer: the operator scans the printed label"},
	{"verify timeout", station("    assign: {scheme: unit, printer: zebra-1, verify: true, verify_timeout: -5s}\n") + scheme + printer,
		[]string{"stations[0].assign.verify_timeout"}, "must be positive"},
}

func TestWorkflowBad(t *testing.T) {
	for _, tc := range workflowBadCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want problems at %q; got %+v", tc.paths, c)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %q (%T) is not a *ValidationError", err, err)
			}
			var got []string
			for _, p := range ve.Problems {
				got = append(got, p.Path)
				if p.Line == 0 {
					t.Errorf("%s has no line", p)
				}
			}
			if !slices.Equal(got, tc.paths) {
				t.Errorf("problem paths = %q, want %q\nerror:\n%v", got, tc.paths, err)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error lacks %q:\n%v", tc.text, err)
			}
		})
	}
}

// workflowFull sets every workflow key.
const workflowFull = `
gateway: {id: gw1, site: s1}
documents:
  - {kind: operator, pattern: 'EMP(?P<value>[0-9]{4})'}
  - {kind: close, pattern: CLOSE}
epcis: {enabled: true, epc_form: urn, company_prefix_length: 7, read_point: "urn:epc:id:sgln:9506000.13435.1", biz_location: "urn:epc:id:sgln:9506000.13435.0"}
serials:
  - {name: unit, template: "{site}-{yy}{ddd}-{seq:6}{check:mod37-2}"}
  - {name: fleet, template: "FL{seq:8}{check:luhn}", start: 100000, granted: true, low_water: 500, max_length: 12}
printers:
  - {id: zebra-1, addr: "10.0.4.31:9100"}
  - {id: usb-1, type: zpl, device: /dev/usb/lp0, retry: 2s}
stations:
  - id: dock-1
    documents: [{kind: order, pattern: '(?P<value>PO-[0-9]+)', key: po}]
    gs1_documents: true
    context_idle: 30m
    document_signal: warn
    orders: {over_scan: reject, unexpected: {receive: reject, count: warn}}
    epcis: {read_point: "urn:epc:id:sgln:9506000.13435.7"}
    scanners: [{id: a, port: /dev/ttyACM0}]
  - id: pack-1
    mode: pack
    aggregation: {child_count: 12, max_children: 50, child_products: ["09506000134352", "PUMP-200"]}
    scanners: [{id: b, port: /dev/ttyACM1}]
  - id: bench-1
    mode: assign
    assign: {scheme: unit, printer: zebra-1, label: /etc/scangw/unit.zpl, verify: true, verify_timeout: 1m}
    scanners: [{id: c, port: /dev/ttyACM2}]
  - id: bench-2
    assign: {scheme: fleet}
    scanners: [{id: d, port: /dev/ttyACM3}]
`

func TestWorkflowFull(t *testing.T) {
	c, err := Parse([]byte(workflowFull))
	if err != nil {
		t.Fatal(err)
	}
	eq := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %+v\nwant %+v", what, got, want)
		}
	}
	eq("documents", c.Documents, []Document{
		{Kind: "operator", Pattern: "EMP(?P<value>[0-9]{4})"},
		{Kind: "close", Pattern: "CLOSE"},
	})
	eq("epcis", c.EPCIS, EPCIS{Enabled: true, EPCForm: "urn", CompanyPrefixLength: 7,
		ReadPoint: "urn:epc:id:sgln:9506000.13435.1", BizLocation: "urn:epc:id:sgln:9506000.13435.0"})
	eq("serials", c.Serials, []SerialScheme{
		{Name: "unit", Template: "{site}-{yy}{ddd}-{seq:6}{check:mod37-2}", Start: 1, LowWater: 100, MaxLength: 20},
		{Name: "fleet", Template: "FL{seq:8}{check:luhn}", Start: 100000, Granted: true, LowWater: 500, MaxLength: 12},
	})
	eq("printers", c.Printers, []Printer{
		{ID: "zebra-1", Type: "zpl", Addr: "10.0.4.31:9100", Retry: Duration(5 * time.Second)},
		{ID: "usb-1", Type: "zpl", Device: "/dev/usb/lp0", Retry: Duration(2 * time.Second)},
	})

	dock, pack, bench, bench2 := c.Stations[0], c.Stations[1], c.Stations[2], c.Stations[3]
	eq("dock-1 documents", dock.Documents, []Document{{Kind: "order", Pattern: "(?P<value>PO-[0-9]+)", Key: "po"}})
	eq("dock-1 gs1_documents", dock.GS1Documents, true)
	eq("dock-1 context_idle", dock.ContextIdle, Duration(30*time.Minute))
	eq("dock-1 document_signal", dock.DocumentSignal, "warn")
	eq("dock-1 orders", dock.Orders, Orders{OverScan: ModePolicy{"*": "reject"}, Unexpected: ModePolicy{"receive": "reject", "count": "warn"}})
	eq("dock-1 epcis", dock.EPCIS, EPCIS{ReadPoint: "urn:epc:id:sgln:9506000.13435.7"})
	eq("dock-1 aggregation", dock.Aggregation, Aggregation{MaxChildren: 1000})
	eq("dock-1 assign", dock.Assign, Assign{VerifyTimeout: Duration(30 * time.Second)})

	eq("pack-1 aggregation", pack.Aggregation, Aggregation{ChildCount: 12, MaxChildren: 50, ChildProducts: []string{"09506000134352", "PUMP-200"}})
	eq("pack-1 document_signal", pack.DocumentSignal, "good")
	eq("pack-1 orders", pack.Orders, Orders{})
	eq("bench-1 assign", bench.Assign, Assign{Scheme: "unit", Printer: "zebra-1", Label: "/etc/scangw/unit.zpl", Verify: true, VerifyTimeout: Duration(time.Minute)})
	eq("bench-2 assign", bench2.Assign, Assign{Scheme: "fleet", VerifyTimeout: Duration(30 * time.Second)})
}

// TestWorkflowDefaults: a minimal config, and a scheme and a printer
// that give only what is required, get every workflow default.
func TestWorkflowDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal + "serials: [{name: unit, template: 'U{seq:6}'}]\nprinters: [{id: p, device: /dev/usb/lp0}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	st := c.Stations[0]
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"epcis.epc_form", c.EPCIS.EPCForm, "dl"},
		{"epcis.enabled", c.EPCIS.Enabled, false},
		{"document_signal", st.DocumentSignal, "good"},
		{"context_idle", st.ContextIdle, Duration(0)},
		{"aggregation.max_children", st.Aggregation.MaxChildren, 1000},
		{"aggregation.child_count", st.Aggregation.ChildCount, 0},
		{"assign.verify_timeout", st.Assign.VerifyTimeout, Duration(30 * time.Second)},
		{"orders.over_scan(receive)", st.Orders.OverScan.For("receive"), "warn"},
		{"orders.unexpected(ship)", st.Orders.Unexpected.For("ship"), "warn"},
		{"serials[0].start", c.Serials[0].Start, uint64(1)},
		{"serials[0].low_water", c.Serials[0].LowWater, uint64(100)},
		{"serials[0].max_length", c.Serials[0].MaxLength, 20},
		{"serials[0].granted", c.Serials[0].Granted, false},
		{"printers[0].type", c.Printers[0].Type, "zpl"},
		{"printers[0].retry", c.Printers[0].Retry, Duration(5 * time.Second)},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
}

func TestModePolicy(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want ModePolicy
		// mode -> policy For returns
		for_ map[string]string
		out  string // marshalled back
	}{
		{"warn", ModePolicy{"*": "warn"}, map[string]string{"receive": "warn", "ship": "warn"}, "warn"},
		{"reject", ModePolicy{"*": "reject"}, map[string]string{"receive": "reject", "count": "reject"}, "reject"},
		{"{receive: reject}", ModePolicy{"receive": "reject"}, map[string]string{"receive": "reject", "count": "warn"}, "receive: reject"},
		{"{'*': reject, count: warn}", ModePolicy{"*": "reject", "count": "warn"}, map[string]string{"receive": "reject", "count": "warn"}, "'*': reject\ncount: warn"},
		{`""`, nil, map[string]string{"receive": "warn"}, "warn"},
		{"{}", ModePolicy{}, map[string]string{"receive": "warn"}, "warn"},
	} {
		t.Run(tc.yaml, func(t *testing.T) {
			var m ModePolicy
			if err := yaml.Unmarshal([]byte(tc.yaml), &m); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m, tc.want) {
				t.Errorf("got %#v, want %#v", m, tc.want)
			}
			for mode, want := range tc.for_ {
				if got := m.For(mode); got != want {
					t.Errorf("For(%q) = %q, want %q", mode, got, want)
				}
			}
			out, err := yaml.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != tc.out {
				t.Errorf("marshalled %q, want %q", got, tc.out)
			}
		})
	}

	// Spelling the default policy out is the same config.
	base, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	for _, orders := range []string{"{over_scan: warn}", "{over_scan: warn, unexpected: {}}", `{unexpected: ""}`} {
		c, err := Parse([]byte(station("    orders: " + orders + "\n")))
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash() != base.Hash() {
			t.Errorf("orders %s hashes %s, the default %s", orders, c.Hash(), base.Hash())
		}
	}
	c, err := Parse([]byte(station("    orders: {over_scan: reject}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash() == base.Hash() {
		t.Errorf("over_scan reject hashes like the default")
	}
}

// TestFullShowsWorkflow: full.yaml's second station shows the workflow
// keys at other values than the defaults its first station spells out.
func TestFullShowsWorkflow(t *testing.T) {
	c, err := Load("full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st := c.Stations[1]
	if len(st.Documents) == 0 || !st.GS1Documents || st.ContextIdle == 0 ||
		st.Orders.OverScan.For(st.Mode) != "reject" || st.Aggregation.ChildCount != 12 ||
		len(st.Aggregation.ChildProducts) == 0 || st.EPCIS.ReadPoint == "" {
		t.Errorf("full.yaml's %s does not show the workflow keys: %+v", st.ID, st)
	}
}

// FuzzWorkflow feeds Parse the workflow sections: no input may panic it,
// and a config it accepts must marshal back to the same config, which
// ModePolicy's canonical form (a word, or a mapping) has to keep.
func FuzzWorkflow(f *testing.F) {
	data, err := os.ReadFile("full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(workflowFull))
	for _, tc := range workflowBadCases {
		f.Add([]byte(tc.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled config: %v\n%s", err, out)
		}
		if c2.Hash() != c.Hash() {
			t.Fatalf("round trip changed the config:\n%s", out)
		}
	})
}

// TestBoolAndUintNamed: a value of the wrong type for a true/false or a
// counter key is reported by its path and line, with the others.
func TestBoolAndUintNamed(t *testing.T) {
	_, err := Parse([]byte(`gateway: {id: g, site: s}
stations:
  - id: st
    gs1_documents: maybe
    noread_events: 3
    scanners: [{id: a, port: /dev/ttyS0}]
serials: [{name: u, template: "U{seq:4}", start: -1}]
`))
	for _, want := range []string{
		`stations[0].gs1_documents: want true or false, got "maybe" (line 4)`,
		`stations[0].noread_events: want true or false, got "3" (line 5)`,
		`serials[0].start: want an integer of 0 or more, got "-1" (line 7)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to say %s", err, want)
		}
	}
}

// TestSerialsTooLongHere: a scheme whose serials the gateway's own ids
// make too long is refused at the station that uses it.
func TestSerialsTooLongHere(t *testing.T) {
	_, err := Parse([]byte(`gateway: {id: g, site: dc-east}
serials: [{name: unit, template: "{site}-{yy}{ddd}-{seq:6}{check:mod37-2}"}]
stations:
  - id: bench-1
    mode: assign
    assign: {scheme: unit}
    scanners: [{id: a, port: /dev/ttyS0}]
`))
	if err == nil || !strings.Contains(err.Error(), "stations[0].assign.scheme: scheme unit cannot make serials at this station") {
		t.Fatalf("error %v, want stations[0].assign.scheme refused", err)
	}
	if _, err := Parse([]byte(`gateway: {id: g, site: de}
serials: [{name: unit, template: "{site}-{yy}{ddd}-{seq:6}{check:mod37-2}"}]
stations:
  - id: bench-1
    mode: assign
    assign: {scheme: unit}
    scanners: [{id: a, port: /dev/ttyS0}]
`)); err != nil {
		t.Fatalf("a short site id: %v", err)
	}
}
