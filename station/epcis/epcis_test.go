package epcis

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin on any test machine

	"github.com/scangw/scangw/station/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	gtin      = "09506000134352" // GS1's example GTIN, company prefix 9506000
	bikeGTIN  = "19506000134359"
	partGTIN  = "09506000999999"
	sscc      = "395060000000000016"
	scanID    = "01900000-0000-7000-8000-000000000001"
	epoch     = "01900000-0000-7000-8000-0000000000e0"
	rpURN     = "urn:epc:id:sgln:9506000.00001.0"
	siteDL    = "https://id.gs1.org/414/9506000000022"
	siteBT    = "urn:epcglobal:cbv:bt:9506000000022:"
	dlSGTIN   = "https://id.gs1.org/01/" + gtin + "/21/"
	urnSGTIN  = "urn:epc:id:sgtin:9506000.013435."
	winterUTC = "2024-01-15T09:30:00.1234Z"
)

var berlin, _ = time.LoadLocation("Europe/Berlin")

func dlConfig() Config { return Config{ReadPoint: rpURN, BizLocation: siteDL, Location: berlin} }

func urnConfig() Config {
	c := dlConfig()
	c.EPCForm, c.CompanyPrefixLength = EPCFormURN, map[string]int{"9506000": 7, "": 9}
	return c
}

func with(c Config, f func(*Config)) Config { f(&c); return c }

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func scan(mode string, fields, ctx map[string]string) *wire.ScanData {
	return &wire.ScanData{
		Seq: 42, Epoch: epoch, Station: "dock-3", Scanner: "hand-1", Mode: mode,
		Context: ctx, Fields: fields, Verdict: wire.Accepted,
	}
}

func serial(s string) map[string]string {
	return map[string]string{"scheme": "gs1", "gtin": gtin, "serial": s}
}

// want lists fields of the event as JSON; "-" means absent.
type want map[string]string

func TestObjectEvent(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		time   string
		scan   *wire.ScanData
		want   want
		golden string
	}{{
		name: "receive against an order", cfg: dlConfig(),
		scan: scan("receive", serial("A1"), map[string]string{"order": "PO-1234", "operator": "badge-7"}),
		want: want{
			"type": `"ObjectEvent"`, "action": `"OBSERVE"`, "bizStep": `"receiving"`, "disposition": `"in_progress"`,
			"epcList": `["` + dlSGTIN + `A1"]`, "quantityList": "-",
			"eventTime": `"2024-01-15T10:30:00.123+01:00"`, "eventTimeZoneOffset": `"+01:00"`,
			"readPoint": `{"id":"` + rpURN + `"}`, "bizLocation": `{"id":"` + siteDL + `"}`,
			"bizTransactionList": `[{"type":"po","bizTransaction":"` + siteBT + `PO-1234"}]`,
			"scangw:event":       `"` + scanID + `"`, "scangw:station": `"dock-3"`, "scangw:scanner": `"hand-1"`,
			"scangw:seq": "42", "scangw:epoch": `"` + epoch + `"`,
		},
		golden: "receive.json",
	}, {
		name: "ship against a pick list, EPC URI, summer time", cfg: urnConfig(), time: "2024-07-15T09:30:00Z",
		scan: scan("ship", serial("A1"), map[string]string{"pick": "SO-9"}),
		want: want{
			"bizStep": `"shipping"`, "disposition": `"in_transit"`, "epcList": `["` + urnSGTIN + `A1"]`,
			"eventTime": `"2024-07-15T11:30:00.000+02:00"`, "eventTimeZoneOffset": `"+02:00"`,
			"bizTransactionList": `[{"type":"po","bizTransaction":"` + siteBT + `SO-9"}]`,
		},
	}, {
		name: "return", cfg: dlConfig(), scan: scan("return", serial("A1"), nil),
		want: want{"bizStep": `"receiving"`, "disposition": `"returned"`, "bizTransactionList": "-"},
	}, {
		name: "count", cfg: dlConfig(), scan: scan("count", serial("A1"), nil),
		want: want{"action": `"OBSERVE"`, "bizStep": `"cycle_counting"`, "disposition": "-"},
	}, {
		name: "transfer", cfg: dlConfig(), scan: scan("transfer", serial("A1"), nil),
		want: want{"bizStep": `"transporting"`, "disposition": "-"},
	}, {
		name: "assign commissions", cfg: urnConfig(), scan: scan("assign", serial("NEW-1"), nil),
		want: want{"action": `"ADD"`, "bizStep": `"commissioning"`, "disposition": `"active"`, "epcList": `["` + urnSGTIN + `NEW-1"]`},
	}, {
		name: "a warning is a fact too", cfg: dlConfig(),
		scan: func() *wire.ScanData { d := scan("receive", serial("A1"), nil); d.Verdict = wire.Warning; return d }(),
		want: want{"epcList": `["` + dlSGTIN + `A1"]`},
	}, {
		name: "lot without serial", cfg: dlConfig(),
		scan: scan("receive", map[string]string{"gtin": gtin, "lot": "L42", "expiry": "2027-12-31"}, nil),
		want: want{"epcList": "-", "quantityList": `[{"epcClass":"https://id.gs1.org/01/` + gtin + `/10/L42","quantity":1}]`},
	}, {
		name: "lot without serial, EPC URI", cfg: urnConfig(),
		scan: scan("receive", map[string]string{"gtin": gtin, "lot": "L42"}, nil),
		want: want{"quantityList": `[{"epcClass":"urn:epc:class:lgtin:9506000.013435.L42","quantity":1}]`},
	}, {
		name: "bare GTIN", cfg: dlConfig(), scan: scan("count", map[string]string{"gtin": gtin}, nil),
		want: want{"quantityList": `[{"epcClass":"https://id.gs1.org/01/` + gtin + `","quantity":1}]`},
	}, {
		name: "bare GTIN, EPC URI", cfg: urnConfig(), scan: scan("count", map[string]string{"gtin": gtin}, nil),
		want: want{"quantityList": `[{"epcClass":"urn:epc:idpat:sgtin:9506000.013435.*","quantity":1}]`},
	}, {
		name: "SSCC", cfg: dlConfig(), scan: scan("receive", map[string]string{"sscc": sscc}, nil),
		want: want{"epcList": `["https://id.gs1.org/00/` + sscc + `"]`},
	}, {
		name: "SSCC, EPC URI", cfg: urnConfig(), scan: scan("receive", map[string]string{"sscc": sscc}, nil),
		want: want{"epcList": `["urn:epc:id:sscc:9506000.3000000001"]`},
	}, {
		name: "serial with URI characters", cfg: dlConfig(), scan: scan("receive", serial(`A/1&<2`), nil),
		want: want{"epcList": `["` + dlSGTIN + `A%2F1%26%3C2"]`},
	}, {
		name: "serial with URI characters, EPC URI", cfg: urnConfig(), scan: scan("receive", serial(`A/1&<2`), nil),
		want: want{"epcList": `["` + urnSGTIN + `A%2F1%26%3C2"]`},
	}, {
		name: "order numbers are escaped, URIs kept", cfg: with(dlConfig(), func(c *Config) { c.BizTransactions = map[string]string{"rma": "rma"} }),
		scan: scan("return", serial("A1"), map[string]string{"order": "PO 77/A", "pick": "http://%00", "rma": "https://erp.example.com/rma/5"}),
		want: want{"bizTransactionList": `[{"type":"po","bizTransaction":"` + siteBT + `PO%2077%2FA"},{"type":"po","bizTransaction":"` + siteBT + `http:%2F%2F%2500"},{"type":"rma","bizTransaction":"https://erp.example.com/rma/5"}]`},
	}, {
		name: "overrides", cfg: with(dlConfig(), func(c *Config) {
			c.BizSteps = map[string]string{"count": "stock_taking", "receive": "https://example.com/vocab/quarantining"}
			c.Dispositions = map[string]string{"receive": "sellable_not_accessible"}
			c.BizTransactions = map[string]string{"order": ""}
			c.TransactionPrefix = "https://erp.example.com/doc/"
		}),
		scan: scan("receive", serial("A1"), map[string]string{"order": "PO-1", "pick": "SO-1"}),
		want: want{
			"bizStep": `"https://example.com/vocab/quarantining"`, "disposition": `"sellable_not_accessible"`,
			"bizTransactionList": `[{"type":"po","bizTransaction":"https://erp.example.com/doc/SO-1"}]`,
		},
	}, {
		name: "no business location, zone of the time", cfg: Config{ReadPoint: siteDL + "/254/D3"}, time: "2024-01-15T09:30:00-05:00",
		scan: scan("receive", serial("A1"), map[string]string{"order": "PO-1"}),
		want: want{
			"readPoint": `{"id":"` + siteDL + `/254/D3"}`, "bizLocation": "-", "eventTimeZoneOffset": `"-05:00"`,
			"bizTransactionList": `[{"type":"po","bizTransaction":"` + siteBT + `PO-1"}]`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := at(winterUTC)
			if tc.time != "" {
				ts = at(tc.time)
			}
			doc, err := ObjectEvent(tc.cfg, scanID, ts, tc.scan)
			if err != nil {
				t.Fatal(err)
			}
			checkDocument(t, doc, tc.want, tc.golden)
			again, _ := ObjectEvent(tc.cfg, scanID, ts, tc.scan)
			if !bytes.Equal(doc, again) {
				t.Errorf("a second rendering differs:\n%s\n%s", doc, again)
			}
		})
	}
}

func TestObjectEventNone(t *testing.T) {
	rejected := scan("receive", serial("A1"), nil)
	rejected.Verdict = wire.Rejected
	for name, d := range map[string]*wire.ScanData{
		"rejected":        rejected,
		"pack mode":       scan("pack", serial("A1"), nil),
		"build mode":      scan("build", serial("A1"), nil),
		"HIBC":            scan("receive", map[string]string{"scheme": "hibc", "lic": "A123", "pcn": "BJC1", "serial": "77"}, nil),
		"plain":           scan("receive", map[string]string{"scheme": "plain", "serial": "X-1"}, nil),
		"nothing parsed":  scan("receive", nil, nil),
		"serial, no GTIN": scan("receive", map[string]string{"serial": "77"}, nil),
	} {
		t.Run(name, func(t *testing.T) {
			doc, err := ObjectEvent(dlConfig(), scanID, at(winterUTC), d)
			if doc != nil || err != nil {
				t.Errorf("got %s, %v; want nothing", doc, err)
			}
		})
	}
}

func TestObjectEventErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		scan *wire.ScanData
		want string
	}{
		{"unknown mode", dlConfig(), scan("juggle", serial("A1"), nil), `mode "juggle"`},
		{"bad config", Config{}, scan("receive", serial("A1"), nil), "read_point"},
		{"bad check digit", dlConfig(), scan("receive", map[string]string{"gtin": "09506000134353", "serial": "A1"}, nil), "09506000134353"},
		{"serial too long", dlConfig(), scan("receive", serial(strings.Repeat("9", 21)), nil), "serial"},
		{"no prefix length", with(urnConfig(), func(c *Config) { c.CompanyPrefixLength = map[string]int{"4": 7} }),
			scan("receive", serial("A1"), nil), "company_prefix_length"},
		{"GTIN-12", dlConfig(), scan("receive", map[string]string{"gtin": "950000134352", "lot": "0"}, nil), "not 14 digits"},
		{"no data", dlConfig(), nil, "no event data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := ObjectEvent(tc.cfg, scanID, at(winterUTC), tc.scan)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %s, %v; want an error naming %q", doc, err, tc.want)
			}
		})
	}
}

func agg(mode, action, parent string, children []string, ctx map[string]string) *wire.AggregationData {
	return &wire.AggregationData{
		Seq: 43, Epoch: epoch, Station: "pack-1", Mode: mode, Action: action,
		Parent: parent, Children: children, ClosedBy: wire.ClosedByParent, Operator: "badge-7", Context: ctx,
	}
}

func key(g, s string) string { return "gs1:(01)" + g + "(21)" + s }

func TestAggregationEvent(t *testing.T) {
	cases := []string{key(gtin, "C1"), key(gtin, "C2"), "gs1:(00)395060000000000023"}
	bike := key(bikeGTIN, "BIKE-1")
	parts := []string{key(partGTIN, "FRAME-9"), key(partGTIN, "FORK-3"), key(partGTIN, "WHEEL-5")}
	for _, tc := range []struct {
		name   string
		cfg    Config
		agg    *wire.AggregationData
		want   want
		golden string
	}{{
		name: "pack a pallet for an order", cfg: dlConfig(),
		agg: agg("pack", wire.AggAdd, "gs1:(00)"+sscc, cases, map[string]string{"order": "PO-1234", "parent": "gs1:(00)" + sscc}),
		want: want{
			"type": `"AggregationEvent"`, "action": `"ADD"`, "bizStep": `"packing"`, "disposition": `"in_progress"`,
			"parentID":           `"https://id.gs1.org/00/` + sscc + `"`,
			"childEPCs":          `["` + dlSGTIN + `C1","` + dlSGTIN + `C2","https://id.gs1.org/00/395060000000000023"]`,
			"bizTransactionList": `[{"type":"po","bizTransaction":"` + siteBT + `PO-1234"}]`,
			"scangw:seq":         "43", "scangw:station": `"pack-1"`, "scangw:scanner": "-", "epcList": "-",
		},
		golden: "pack.json",
	}, {
		name: "pack, EPC URI", cfg: urnConfig(), agg: agg("pack", wire.AggAdd, "gs1:(00)"+sscc, cases, nil),
		want: want{
			"parentID":  `"urn:epc:id:sscc:9506000.3000000001"`,
			"childEPCs": `["` + urnSGTIN + `C1","` + urnSGTIN + `C2","urn:epc:id:sscc:9506000.3000000002"]`,
		},
	}, {
		name: "a child twice is listed once", cfg: dlConfig(), agg: agg("pack", wire.AggAdd, "gs1:(00)"+sscc, []string{cases[0], cases[0]}, nil),
		want: want{"childEPCs": `["` + dlSGTIN + `C1"]`},
	}, {
		name: "unpack one", cfg: dlConfig(), agg: agg("unpack", wire.AggDelete, "gs1:(00)"+sscc, cases[:1], nil),
		want: want{"action": `"DELETE"`, "bizStep": `"unpacking"`, "disposition": "-", "childEPCs": `["` + dlSGTIN + `C1"]`},
	}, {
		name: "unpack all", cfg: dlConfig(), agg: agg("unpack", wire.AggDelete, "gs1:(00)"+sscc, nil, nil),
		want: want{"action": `"DELETE"`, "childEPCs": "-"},
	}, {
		name: "delete in pack mode", cfg: dlConfig(), agg: agg("pack", wire.AggDelete, "gs1:(00)"+sscc, cases[:1], nil),
		want: want{"action": `"DELETE"`, "bizStep": `"unpacking"`},
	}, {
		name: "build a bike", cfg: urnConfig(), agg: agg("build", wire.AggAdd, bike, parts, map[string]string{"order": "WO-5"}),
		want: want{
			"action": `"ADD"`, "bizStep": `"assembling"`, "disposition": "-",
			"parentID":  `"urn:epc:id:sgtin:9506000.113435.BIKE-1"`,
			"childEPCs": `["urn:epc:id:sgtin:9506000.099999.FRAME-9","urn:epc:id:sgtin:9506000.099999.FORK-3","urn:epc:id:sgtin:9506000.099999.WHEEL-5"]`,
		},
	}, {
		name: "take a part off", cfg: dlConfig(), agg: agg("build", wire.AggDelete, bike, parts[2:], nil),
		want: want{"action": `"DELETE"`, "bizStep": `"disassembling"`},
	}, {
		name: "override per mode", cfg: with(dlConfig(), func(c *Config) { c.Dispositions = map[string]string{"pack": "container_closed"} }),
		agg:  agg("pack", wire.AggAdd, "gs1:(00)"+sscc, cases, nil),
		want: want{"disposition": `"container_closed"`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := AggregationEvent(tc.cfg, scanID, at(winterUTC), tc.agg)
			if err != nil {
				t.Fatal(err)
			}
			checkDocument(t, doc, tc.want, tc.golden)
		})
	}

	t.Run("none", func(t *testing.T) {
		for name, d := range map[string]*wire.AggregationData{
			"closed empty": agg("pack", wire.AggAdd, "gs1:(00)"+sscc, nil, nil),
			"HIBC child":   agg("pack", wire.AggAdd, "gs1:(00)"+sscc, []string{cases[0], "hibc:A123BJC1/77"}, nil),
			"plain parent": agg("pack", wire.AggAdd, "plain:BOX-1", cases, nil),
		} {
			if doc, err := AggregationEvent(dlConfig(), scanID, at(winterUTC), d); doc != nil || err != nil {
				t.Errorf("%s: got %s, %v; want nothing", name, doc, err)
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		for name, tc := range map[string]struct {
			d    *wire.AggregationData
			want string
		}{
			"not an aggregation mode": {agg("receive", wire.AggAdd, "gs1:(00)"+sscc, cases, nil), `mode "receive"`},
			"unpack adds":             {agg("unpack", wire.AggAdd, "gs1:(00)"+sscc, cases, nil), `action "add"`},
			"parent without serial":   {agg("pack", wire.AggAdd, "gs1:(01)"+gtin, cases, nil), "no serial"},
			"bad SSCC":                {agg("pack", wire.AggAdd, "gs1:(00)395060000000000017", cases, nil), "395060000000000017"},
			"unknown GS1 key":         {agg("pack", wire.AggAdd, "gs1:(8003)123", cases, nil), "neither"},
			"no data":                 {nil, "no event data"},
		} {
			doc, err := AggregationEvent(dlConfig(), scanID, at(winterUTC), tc.d)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: got %s, %v; want an error naming %q", name, doc, err, tc.want)
			}
		}
	})
}

// The event hash names the content: another seq is another event, the
// same one re-rendered is the same.
func TestEventIDNamesContent(t *testing.T) {
	id := func(d *wire.ScanData) string {
		doc, err := ObjectEvent(dlConfig(), scanID, at(winterUTC), d)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			EPCISBody struct {
				EventList []struct {
					EventID string `json:"eventID"`
				} `json:"eventList"`
			} `json:"epcisBody"`
		}
		if err := json.Unmarshal(doc, &v); err != nil {
			t.Fatal(err)
		}
		return v.EPCISBody.EventList[0].EventID
	}
	a := id(scan("receive", serial("A1"), nil))
	if !strings.HasPrefix(a, "ni:///sha-256;") || !strings.HasSuffix(a, "?ver=CBV2.0") {
		t.Fatalf("eventID %s is not an EPCIS Event Hash ID", a)
	}
	other := scan("receive", serial("A1"), nil)
	other.Seq++
	if id(scan("receive", serial("A1"), nil)) != a || id(other) == a {
		t.Error("eventID does not follow the content")
	}
}

// checkDocument validates doc against GS1's schema and the document
// frame, compares the fields in want, and the golden file if named.
func checkDocument(t *testing.T, doc []byte, w want, golden string) {
	t.Helper()
	checkGS1(t, doc)
	var d struct {
		Context       []any  `json:"@context"`
		Type          string `json:"type"`
		SchemaVersion string `json:"schemaVersion"`
		CreationDate  string `json:"creationDate"`
		Body          struct {
			EventList []map[string]json.RawMessage `json:"eventList"`
		} `json:"epcisBody"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	if d.Type != "EPCISDocument" || d.SchemaVersion != "2.0" || len(d.Body.EventList) != 1 ||
		len(d.Context) != 2 || d.Context[0] != epcisContext || !maps.Equal(d.Context[1].(map[string]any), map[string]any{"scangw": Namespace}) {
		t.Fatalf("document frame:\n%s", doc)
	}
	ev := d.Body.EventList[0]
	if got := string(ev["eventTime"]); got != `"`+d.CreationDate+`"` {
		t.Errorf("creationDate %s, eventTime %s", d.CreationDate, got)
	}
	for k, v := range w {
		got, ok := ev[k]
		switch {
		case v == "-" && ok:
			t.Errorf("%s: %s, want none", k, got)
		case v != "-" && string(got) != v:
			t.Errorf("%s: %s\n want %s", k, got, v)
		}
	}
	if golden == "" {
		return
	}
	path := "testdata/" + golden
	if *update {
		var b bytes.Buffer
		if err := json.Indent(&b, doc, "", "  "); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b.Bytes(), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	var c bytes.Buffer
	if err := json.Compact(&c, g); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Bytes(), doc) {
		t.Errorf("differs from %s (go test -update rewrites it):\n%s", path, doc)
	}
}

// Whatever the scan's fields and context hold, a document that is made is
// valid EPCIS 2.0; the rest are errors, never panics.
func FuzzObjectEvent(f *testing.F) {
	f.Add(gtin, "A1", "", "", "PO-1234", false)
	f.Add(gtin, `A/1&<2`, "", "", "PO 77/A", true)
	f.Add(gtin, "", "L42", "", "https://erp.example.com/po/1", true)
	f.Add("", "", "", sscc, "", true)
	f.Add(gtin, "", "", "", "urn:x", false)
	f.Fuzz(func(t *testing.T, g, s, lot, ss, order string, urn bool) {
		cfg := dlConfig()
		if urn {
			cfg = urnConfig()
		}
		fields := map[string]string{"gtin": g, "serial": s, "lot": lot, "sscc": ss}
		doc, err := ObjectEvent(cfg, scanID, at(winterUTC), scan("receive", fields, map[string]string{"order": order}))
		if err != nil || doc == nil {
			return
		}
		if err := validGS1(doc); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
	})
}
