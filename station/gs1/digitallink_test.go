package gs1

import (
	"reflect"
	"testing"
)

// dlCases follow GS1 Digital Link Standard: URI Syntax 1.4 and the
// dictionary's dlpkey / "?" attributes.
var dlCases = []parseCase{
	{name: "issue example", in: "https://id.example.com/01/" + gtin + "/21/ABC?17=271231", want: "(01)" + gtin + "(21)ABC(17)271231"},
	{name: "GS1 resolver GTIN only", in: "https://id.gs1.org/01/" + gtin, want: "(01)" + gtin},
	{name: "http scheme", in: "http://example.com/01/" + gtin, want: "(01)" + gtin},
	{name: "upper-case scheme and host (QR alphanumeric mode)", in: "HTTPS://ID.GS1.ORG/01/" + gtin, want: "(01)" + gtin},
	{name: "path stem before the key", in: "https://brand.example.com/products/food/01/" + gtin + "/10/L1", want: "(01)" + gtin + "(10)L1"},
	{name: "all qualifiers in order", in: "https://id.example.com/01/" + gtin + "/22/V1/10/L1/21/S1", want: "(01)" + gtin + "(22)V1(10)L1(21)S1"},
	{name: "qualifiers skipping one", in: "https://id.example.com/01/" + gtin + "/22/V1/21/S1", want: "(01)" + gtin + "(22)V1(21)S1"},
	{name: "second qualifier alternative", in: "https://id.example.com/01/" + gtin + "/235/TPX1", want: "(01)" + gtin + "(235)TPX1"},
	{name: "GTIN-13 padded", in: "https://id.example.com/01/9506000134352", want: "(01)" + gtin},
	{name: "GTIN-12 padded", in: "https://id.example.com/01/" + upcA, want: "(01)00" + upcA},
	{name: "GTIN-8 padded", in: "https://id.example.com/01/" + gtin8, want: "(01)000000" + gtin8},
	{name: "query attributes", in: "https://id.example.com/01/" + gtin + "/10/L1?17=271231&3103=000500", want: "(01)" + gtin + "(10)L1(17)271231(3103)000500"},
	{name: "resolver parameters ignored", in: "https://id.example.com/01/" + gtin + "?linkType=gs1:pip&17=271231&context=x", want: "(01)" + gtin + "(17)271231"},
	{name: "fragment ignored", in: "https://id.example.com/01/" + gtin + "/21/S1#top", want: "(01)" + gtin + "(21)S1"},
	{name: "trailing slash", in: "https://id.example.com/01/" + gtin + "/21/S1/", want: "(01)" + gtin + "(21)S1"},
	{name: "percent-encoded serial", in: "https://id.example.com/01/" + gtin + "/21/A%2FB%25C", want: "(01)" + gtin + "(21)A/B%C"},
	{name: "percent-encoded paren", in: "https://id.example.com/01/" + gtin + "/21/A%28B", want: "(01)" + gtin + `(21)A\(B`},
	{name: "plus stays plus", in: "https://id.example.com/01/" + gtin + "/21/A+B", want: "(01)" + gtin + "(21)A+B"},
	{name: "SSCC", in: "https://id.example.com/00/" + sscc, want: "(00)" + sscc},
	{name: "GLN with extension", in: "https://id.example.com/414/" + gln + "/254/DOOR4", want: "(414)" + gln + "(254)DOOR4"},
	{name: "GLN with UIC", in: "https://id.example.com/414/" + gln + "/7040/1ABC", want: "(414)" + gln + "(7040)1ABC"},
	{name: "GIAI", in: "https://id.example.com/8004/0614141ABC", want: "(8004)0614141ABC"},
	{name: "CPID with serial", in: "https://id.example.com/8010/0614141ABC/8011/123", want: "(8010)0614141ABC(8011)123"},
	{name: "GSRN with SRIN", in: "https://id.example.com/8018/" + gsrn + "/8019/77", want: "(8018)" + gsrn + "(8019)77"},
	{name: "ITIP with serial", in: "https://id.example.com/8006/" + gtin + "0102/21/S1", want: "(8006)" + gtin + "0102(21)S1"},
	{name: "GDTI", in: "https://id.example.com/253/" + gdti + "DOC1", want: "(253)" + gdti + "DOC1"},
	{name: "GTIN as attribute of an SSCC", in: "https://id.example.com/00/" + sscc + "?02=" + gtin + "&37=12", want: "(00)" + sscc + "(02)" + gtin + "(37)12"},
	{name: "with AIM prefix of a plain QR", in: "]Q1https://id.example.com/01/" + gtin, want: "(01)" + gtin},
	{name: "empty query", in: "https://id.example.com/01/" + gtin + "?", want: "(01)" + gtin},

	{name: "qualifiers out of order", in: "https://id.example.com/01/" + gtin + "/10/L1/22/V1", codes: []string{CodeDLBadQualifier}},
	{name: "mixed alternatives", in: "https://id.example.com/01/" + gtin + "/22/V1/235/T", codes: []string{CodeDLBadQualifier}},
	{name: "qualifier of another key", in: "https://id.example.com/01/" + gtin + "/254/X", codes: []string{CodeDLBadQualifier, CodeMissingRequired}},
	{name: "SSCC takes no qualifiers", in: "https://id.example.com/00/" + sscc + "/21/S", codes: []string{CodeDLBadQualifier, CodeMissingRequired}},
	{name: "serial in the query string", in: "https://id.example.com/01/" + gtin + "?21=S1", codes: []string{CodeDLBadAttribute}},
	{name: "CPV in the query string", in: "https://id.example.com/01/" + gtin + "?22=V", codes: []string{CodeDLBadAttribute}},
	{name: "unknown AI in query", in: "https://id.example.com/01/" + gtin + "?23=1", codes: []string{CodeUnknownAI}},
	{name: "bad check digit in path", in: "https://id.example.com/01/09506000134353", codes: []string{CodeBadCheckDigit}},
	{name: "GTIN-13 with bad check digit padded", in: "https://id.example.com/01/9506000134353", codes: []string{CodeBadCheckDigit}},
	{name: "GTIN of 11 digits", in: "https://id.example.com/01/95060001343", codes: []string{CodeTooShort}},
	{name: "bad date in query", in: "https://id.example.com/01/" + gtin + "?17=271300", codes: []string{CodeBadDate}},
	{name: "same AI in path and query", in: "https://id.example.com/01/" + gtin + "/10/A?10=B", codes: []string{CodeDuplicateAI}},
	{name: "excluded pair across path and query", in: "https://id.example.com/01/" + gtin + "?37=5", codes: []string{CodeExcludedPair, CodeMissingRequired, CodeMissingRequired}},
	{name: "no key in path", in: "https://example.com/products/123", codes: []string{CodeDLNoKey}},
	{name: "no path at all", in: "https://example.com", codes: []string{CodeDLNoKey}},
	{name: "key without value", in: "https://id.example.com/01", codes: []string{CodeDLNoKey}},
	{name: "odd segment after qualifiers", in: "https://id.example.com/01/" + gtin + "/21/S1/extra", codes: []string{CodeDLNoKey}},
	{name: "compressed URI unsupported", in: "https://id.gs1.org/AQnYUc1gmiA", codes: []string{CodeDLNoKey}},
	{name: "no host", in: "https:///01/" + gtin, codes: []string{CodeBadURI}},
	{name: "empty after scheme", in: "https://", codes: []string{CodeBadURI}},
	{name: "space in host", in: "https://id example.com/01/" + gtin, codes: []string{CodeBadURI}},
	{name: "bad percent-encoding", in: "https://id.example.com/01/" + gtin + "/21/A%2", codes: []string{CodeBadURI}},
	{name: "bad percent-encoding in query", in: "https://id.example.com/01/" + gtin + "?17=%ZZ", codes: []string{CodeBadURI}},
	{name: "empty value in query", in: "https://id.example.com/01/" + gtin + "?17=", codes: []string{CodeTooShort}},
	{name: "empty serial segment", in: "https://id.example.com/01/" + gtin + "/21//", codes: []string{CodeTooShort}},
	{name: "decoded value outside CSET 82", in: "https://id.example.com/01/" + gtin + "/21/A%20B", codes: []string{CodeBadCharset}},
}

func TestDigitalLinkCases(t *testing.T) {
	for _, tc := range dlCases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tp.Parse(tc.in)
			if got := codesOf(err); !reflect.DeepEqual(got, tc.codes) {
				t.Fatalf("Parse(%q) codes = %v, want %v (err: %v)", tc.in, got, tc.codes, err)
			}
			if tc.want != "" && r.Bracketed() != tc.want {
				t.Fatalf("Bracketed() = %q, want %q", r.Bracketed(), tc.want)
			}
			if err == nil && r.Form != FormDigitalLink {
				t.Fatalf("form %q", r.Form)
			}
		})
	}
}

// TestDigitalLinkSameAsElementString: a Digital Link and the element string
// of the same data give the same AIs (issue 6: "parse to the same element
// strings").
func TestDigitalLinkSameAsElementString(t *testing.T) {
	dl, err := tp.Parse("https://id.example.com/01/" + gtin + "/10/ABC123/21/XYZ789?17=271231")
	if err != nil {
		t.Fatal(err)
	}
	es, err := tp.Parse("]d201" + gtin + "17271231" + "10ABC123\x1d21XYZ789")
	if err != nil {
		t.Fatal(err)
	}
	a, b := map[string]string{}, map[string]string{}
	for _, e := range dl.Elements {
		a[e.AI] = e.Value
	}
	for _, e := range es.Elements {
		b[e.AI] = e.Value
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("DL %v\nES %v", a, b)
	}
	if r2, err := tp.Parse(dl.ElementString()); err != nil || r2.Bracketed() != dl.Bracketed() {
		t.Fatalf("DL → element string → %v, %v", r2.Bracketed(), err)
	}
}

func TestDigitalLinkRendering(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"(01)" + gtin + "(17)271231(10)L1(21)S1", "https://id.gs1.org/01/" + gtin + "/10/L1/21/S1?17=271231"},
		{"(00)" + sscc, "https://id.gs1.org/00/" + sscc},
		{"(01)" + gtin + "(21)A/B", "https://id.gs1.org/01/" + gtin + "/21/A%2FB"},
		{"(414)" + gln + "(254)X", "https://id.gs1.org/414/" + gln + "/254/X"},
		{"(01)" + gtin + "(235)T", "https://id.gs1.org/01/" + gtin + "/235/T"},
	} {
		r, err := tp.ParseBracketed(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := r.DigitalLink("https://id.gs1.org/")
		if !ok || got != tc.want {
			t.Fatalf("DigitalLink(%s) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
		back, err := tp.ParseDigitalLink(got)
		if err != nil || back.Bracketed() == "" {
			t.Fatalf("%s does not parse back: %v", got, err)
		}
	}
	r, _ := Parser{SkipPairing: true}.ParseBracketed("(21)S")
	if _, ok := r.DigitalLink("https://x"); ok {
		t.Fatal("rendered a Digital Link without a key")
	}
	r, _ = Parser{SkipPairing: true}.ParseBracketed("(00)" + sscc + "(21)S")
	if _, ok := r.DigitalLink("https://x"); ok {
		t.Fatal("rendered a serial as a query attribute")
	}
}

func TestParseDigitalLinkNotHTTP(t *testing.T) {
	_, err := ParseDigitalLink("ftp://id.example.com/01/" + gtin)
	if got := codesOf(err); !reflect.DeepEqual(got, []string{CodeBadURI}) {
		t.Fatalf("codes %v", got)
	}
}
