package epcis

import (
	"testing"
	"time"
)

// The vectors are events of the EPCIS Event Hash ID reference
// implementation's examples (github.com/RalphTro/epcis-event-hash-generator
// at 5d2f1c389a1599af40fe1b530b62e0ca59ab818f, tests/examples), rebuilt
// through this package's own config parsing, identifiers and times, with
// the pre-hash strings and hashes it publishes.
func TestEventHashReferenceVectors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		typ     string
		mode    string
		st      step
		time    string
		build   func(t *testing.T, p *plan, e *event, h *canon)
		ctx     map[string]string
		ext     []string
		prehash string
		id      string
	}{{
		name: "epcisDocWithSingleEvent",
		cfg:  Config{ReadPoint: "urn:epc:id:sgln:0614141.07346.1234"},
		typ:  "ObjectEvent", mode: "ship", st: objectSteps["ship"],
		time: "2022-02-16T20:33:31.116000-06:00",
		build: func(t *testing.T, p *plan, e *event, h *canon) {
			for _, s := range []string{"2017", "2018"} {
				u := must(t)(p.sgtin("10614141073464", s))
				e.EPCList, h.epcs = append(e.EPCList, u.epc), append(h.epcs, u.dl)
			}
		},
		ctx:     map[string]string{"order": "http://transaction.acme.com/po/12345678"},
		prehash: "eventType=ObjectEventeventTime=2022-02-17T02:33:31.116ZeventTimeZoneOffset=-06:00epcListepc=https://id.gs1.org/01/10614141073464/21/2017epc=https://id.gs1.org/01/10614141073464/21/2018action=OBSERVEbizStep=https://ref.gs1.org/cbv/BizStep-shippingdisposition=https://ref.gs1.org/cbv/Disp-in_transitreadPointid=https://id.gs1.org/414/0614141073467/254/1234bizTransactionListtype=https://ref.gs1.org/cbv/BTT-pobizTransaction=http://transaction.acme.com/po/12345678",
		id:      "ni:///sha-256;ffa491b16867e34a7791a8d5389d826afc24e63a121026b6a4004ace38631b4b?ver=CBV2.0",
	}, {
		// The second event of epcisDocWithCustomSchemaInContext: a
		// business location, two transactions, a user extension.
		name: "epcisDocWithCustomSchemaInContext",
		cfg: Config{
			ReadPoint: "urn:epc:id:sgln:0012345.11111.400", BizLocation: "urn:epc:id:sgln:0012345.11111.0",
			BizTransactions: map[string]string{"asn": "desadv"}, EPCForm: EPCFormURN, CompanyPrefixLength: map[string]int{"": 7},
		},
		typ: "ObjectEvent", mode: "receive", st: objectSteps["receive"],
		time: "2022-02-15T01:33:31.116-06:00",
		build: func(t *testing.T, p *plan, e *event, h *canon) {
			u := must(t)(p.sgtin("10614141073464", "2018"))
			if u.epc != "urn:epc:id:sgtin:0614141.107346.2018" {
				t.Errorf("EPC URI %s, the example has urn:epc:id:sgtin:0614141.107346.2018", u.epc)
			}
			e.EPCList, h.epcs = []string{u.epc}, []string{u.dl}
		},
		ctx: map[string]string{"order": "http://transaction.acme.com/po/12345678", "asn": "urn:epcglobal:cbv:bt:0614141073467:1152"},
		ext: []string{"{https://ns.example.com/epcis/}myField2=myValue2"},
		id:  "ni:///sha-256;d21abb0ead338a45eb866683e402e3c94fcf8fb80904160e476d3213c64ce41e?ver=CBV2.0",
	}, {
		// The first AggregationEvent of epcisDocWithVariousEventTypes.
		name: "epcisDocWithVariousEventTypes",
		cfg:  Config{ReadPoint: "urn:epc:id:sgln:4047023.00012.0", Dispositions: map[string]string{"pack": ""}},
		typ:  "AggregationEvent", mode: "pack", st: aggregationSteps[modeAction{"pack", "add"}],
		time: "2019-10-21T11:58:56.591+02:00",
		build: func(t *testing.T, p *plan, e *event, h *canon) {
			u := must(t)(p.sscc("040470231111111229"))
			e.ParentID, h.parent = u.epc, u.dl
			for _, s := range []string{"98", "97", "107", "109"} {
				u := must(t)(p.sgtin("04047023775511", s))
				e.ChildEPCs, h.children = append(e.ChildEPCs, u.epc), append(h.children, u.dl)
			}
		},
		prehash: "eventType=AggregationEventeventTime=2019-10-21T09:58:56.591ZeventTimeZoneOffset=+02:00parentID=https://id.gs1.org/00/040470231111111229childEPCsepc=https://id.gs1.org/01/04047023775511/21/107epc=https://id.gs1.org/01/04047023775511/21/109epc=https://id.gs1.org/01/04047023775511/21/97epc=https://id.gs1.org/01/04047023775511/21/98action=ADDbizStep=https://ref.gs1.org/cbv/BizStep-packingreadPointid=https://id.gs1.org/414/4047023000125",
		id:      "ni:///sha-256;c941e6486c561c2be83c28dc228c150eaef9a6befb1015e6cc563982fb7414b6?ver=CBV2.0",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.cfg.plan()
			if err != nil {
				t.Fatal(err)
			}
			at, err := time.Parse(time.RFC3339Nano, tc.time)
			if err != nil {
				t.Fatal(err)
			}
			e, h := p.event(tc.typ, tc.mode, tc.st, at)
			tc.build(t, p, e, h)
			e.BizTransactionList = p.bizTransactions(tc.ctx)
			h.extensions = tc.ext
			if got := preHash(e, h); tc.prehash != "" && got != tc.prehash {
				t.Errorf("pre-hash\n got %s\nwant %s", got, tc.prehash)
			}
			if got := eventID(e, h); got != tc.id {
				t.Errorf("eventID %s, want %s", got, tc.id)
			}
		})
	}
}

func must(t *testing.T) func(unit, error) unit {
	return func(u unit, err error) unit {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
}
