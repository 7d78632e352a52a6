package epcis

import (
	"strings"
	"testing"

	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/gs1"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // each a line of the error; none: valid
	}{
		{"example", dlConfig(), nil},
		{"EPC URI form", urnConfig(), nil},
		{"Digital Link read point, own vocabulary", Config{
			ReadPoint: "https://resolver.example.com/414/9506000000015/254/DOOR%2F3", EPCForm: EPCFormDL,
			BizSteps:        map[string]string{"receive": "https://example.com/vocab/quarantining", "build": "repairing"},
			Dispositions:    map[string]string{"ship": ""},
			BizTransactions: map[string]string{"asn": "desadv", "invoice": "https://example.com/vocab/bill"},
		}, nil},
		{"zero", Config{}, []string{"read_point: required"}},
		{"every field at once", Config{
			ReadPoint:           "urn:epc:id:sgln:123.45.0",
			BizLocation:         "https://id.gs1.org/414/9506000000016",
			EPCForm:             "xml",
			CompanyPrefixLength: map[string]int{"95x": 7, "": 5},
			BizSteps:            map[string]string{"receive": "recieving", "juggle": "receiving"},
			Dispositions:        map[string]string{"ship": "urn:epcglobal:cbv:disp:in_transit"},
			BizTransactions:     map[string]string{"asn": "asn", "": "po"},
			TransactionPrefix:   "PO-",
		}, []string{
			`read_point: "urn:epc:id:sgln:123.45.0": company prefix`,
			`biz_location: "https://id.gs1.org/414/9506000000016": `,
			`epc_form: "xml"`,
			`company_prefix_length[""]: 5 is not`,
			`company_prefix_length["95x"]: a key is`,
			`biz_steps["juggle"]: no mode "juggle"`,
			`biz_steps["receive"]: "recieving" is neither`,
			`dispositions["ship"]: "urn:epcglobal:cbv:disp:in_transit": write CBV values as their bare term`,
			`biz_transactions[""]: empty key`,
			`biz_transactions["asn"]: "asn" is neither`,
			`transaction_prefix: "PO-" does not start an absolute URI`,
		}},
		{"EPC URI without prefix lengths", Config{ReadPoint: rpURN, EPCForm: EPCFormURN}, []string{"company_prefix_length: required"}},
		{"read point with a GTIN", Config{ReadPoint: "https://id.gs1.org/01/09506000134352"}, []string{"read_point:"}},
		{"read point with a GTIN beside", Config{ReadPoint: siteDL + "?01=09506000134352"}, []string{"read_point:"}},
		{"read point not an SGLN", Config{ReadPoint: "geo:47.5,11.1"}, []string{"read_point:"}},
		{"SGLN URN bad extension", Config{ReadPoint: "urn:epc:id:sgln:9506000.00001.%zz"}, []string{"read_point:"}},
		{"SGLN URN too few parts", Config{ReadPoint: "urn:epc:id:sgln:9506000.00001"}, []string{"read_point:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("valid")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("%d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("no problem %q in:\n%v", w, err)
				}
			}
		})
	}
}

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct{ in, dl, gln string }{
		{"urn:epc:id:sgln:0614141.07346.1234", "https://id.gs1.org/414/0614141073467/254/1234", "0614141073467"},
		{"urn:epc:id:sgln:4012345.00022.0", "https://id.gs1.org/414/4012345000221", "4012345000221"},
		{"urn:epc:id:sgln:950600000001..0", "https://id.gs1.org/414/9506000000015", "9506000000015"},
		{"urn:epc:id:sgln:9506000.00001.A%2FB", "https://id.gs1.org/414/9506000000015/254/A%2FB", "9506000000015"},
		{"https://example.com/stem/414/9506000000015/254/D3?linkType=all", "https://id.gs1.org/414/9506000000015/254/D3", "9506000000015"},
	} {
		l, err := parseLocation(tc.in)
		if err != nil || l.dl != tc.dl || l.gln != tc.gln || l.uri != tc.in {
			t.Errorf("%s: %+v, %v; want %s, GLN %s", tc.in, l, err, tc.dl, tc.gln)
		}
	}
}

func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{
		"urn:epc:id:sgln:0614141.07346.1234", "urn:epc:id:sgln:950600000001..0", "urn:epc:id:sgln:9506000.00001.%2F",
		"urn:epc:id:sgln:123.45.0", "https://id.gs1.org/414/9506000000015/254/D3", "https://id.gs1.org/01/09506000134352",
		"http://x/414/9506000000015?254=1", "geo:1,2", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := parseLocation(s)
		if err != nil {
			return
		}
		// What is accepted is a GLN with a good check digit, and its
		// canonical form reads back as itself.
		if len(l.gln) != 13 || !checkdigit.VerifyGS1Mod10(l.gln) {
			t.Fatalf("%q: GLN %q", s, l.gln)
		}
		if _, err := gs1.ParseDigitalLink(l.dl); err != nil {
			t.Fatalf("%q: canonical %q: %v", s, l.dl, err)
		}
		back, err := parseLocation(l.dl)
		if err != nil || back.dl != l.dl || back.gln != l.gln {
			t.Fatalf("%q: canonical %q reads as %+v, %v", s, l.dl, back, err)
		}
	})
}
