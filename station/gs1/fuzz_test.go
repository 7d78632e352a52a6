package gs1

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func sameElements(a, b []Element) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].AI != b[i].AI || a[i].Value != b[i].Value {
			return false
		}
	}
	return true
}

func sorted(els []Element) []Element {
	out := append([]Element(nil), els...)
	slices.SortStableFunc(out, func(a, b Element) int { return strings.Compare(a.AI, b.AI) })
	return out
}

// checkErrors holds every reported error to its contract.
func checkErrors(t *testing.T, data string, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error is not a non-empty Errors: %#v", err)
	}
	for _, e := range es {
		if e.Code == "" || e.Msg == "" {
			t.Fatalf("error without code or message: %#v", e)
		}
		if e.Pos < 0 || e.Pos > len(data) {
			t.Fatalf("position %d outside input of %d bytes: %v", e.Pos, len(data), e)
		}
	}
}

// FuzzParse: no input makes Parse panic, every error is well-formed, and
// valid data survives the trip through element string and bracketed form.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	for _, tc := range dlCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, data string) {
		r, err := tp.Parse(data)
		if r == nil {
			t.Fatal("nil Result")
		}
		_ = r.Bracketed()
		_ = r.ElementString()
		for _, e := range r.Elements {
			_, _ = r.Date(e.AI)
		}
		if err != nil {
			checkErrors(t, data, err)
			return
		}
		es := r.ElementString()
		r2, err := tp.Parse(es)
		if err != nil || !sameElements(r.Elements, r2.Elements) {
			t.Fatalf("%q → element string %q → %v, %v", data, es, r2.Elements, err)
		}
		b := r.Bracketed()
		r3, err := tp.ParseBracketed(b)
		if err != nil || !sameElements(r.Elements, r3.Elements) || r3.Bracketed() != b {
			t.Fatalf("%q → bracketed %q → %v, %v", data, b, r3.Elements, err)
		}
	})
}

// FuzzDigitalLink: no URI makes the Digital Link parser panic; a valid one
// rendered back as a Digital Link parses to the same AIs.
func FuzzDigitalLink(f *testing.F) {
	for _, tc := range dlCases {
		f.Add(tc.in)
	}
	f.Add("https://a/01/" + gtin + "/10/%41%42?17=251231&x=%zz")
	f.Fuzz(func(t *testing.T, uri string) {
		r, err := tp.ParseDigitalLink(uri)
		if r == nil {
			t.Fatal("nil Result")
		}
		if err != nil {
			checkErrors(t, uri, err)
			return
		}
		out, ok := r.DigitalLink("https://id.example.com")
		if !ok {
			t.Fatalf("valid %q cannot be rendered back", uri)
		}
		r2, err := tp.ParseDigitalLink(out)
		// Rendering moves qualifiers given as query attributes (e.g. a lot)
		// into the path, so compare the AIs, not their order.
		if err != nil || !sameElements(sorted(r.Elements), sorted(r2.Elements)) {
			t.Fatalf("%q → %q → %v, %v", uri, out, r2.Elements, err)
		}
	})
}

// FuzzRoundTrip: for any sequence of dictionary values the parser accepts,
// bracketed → element string → bracketed is the identity.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint16(1), "09506000134352", uint16(20), "ABC(1", uint16(300), "000500")
	f.Add(uint16(0), sscc, uint16(130), "0102", uint16(500), "250101")
	ais := AIs()
	f.Fuzz(func(t *testing.T, a uint16, va string, b uint16, vb string, c uint16, vc string) {
		var sb strings.Builder
		for _, p := range []struct {
			i uint16
			v string
		}{{a, va}, {b, vb}, {c, vc}} {
			sb.WriteString("(" + ais[int(p.i)%len(ais)] + ")" + strings.ReplaceAll(p.v, "(", `\(`))
		}
		in := sb.String()
		r, err := Parser{Now: testNow, SkipPairing: true}.ParseBracketed(in)
		if err != nil {
			return
		}
		r2, err := Parser{Now: testNow, SkipPairing: true}.Parse(r.ElementString())
		if err != nil || r2.Bracketed() != r.Bracketed() {
			t.Fatalf("%q → %q → %q, %v", in, r.ElementString(), r2.Bracketed(), err)
		}
	})
}
