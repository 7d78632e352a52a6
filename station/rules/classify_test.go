package rules

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/inspect"
)

// The engine reads a scan exactly as `scangw inspect` does: same scheme,
// same syntax errors. It does not call package inspect, which builds a
// report (titles, bracketed text, maps) the hot path does not need.
func TestClassifyAgreesWithInspect(t *testing.T) {
	f, err := os.Open("../inspect/testdata/lines.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := []string{
		"]E00036000291452", "0036000291452", "]C100106141411234567897", "https://id.example.com/01/09506000134353/21/X",
		"http://example.com/01/", "+$$3251231LOT3GE", "]d2+A123BJC5D6E71G", "0109506000134352", "01095060001343521712", "ABC",
		"]A0+A123BJC5D6E71G", "(01)0950600013435", "]Q3SN-1",
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	now := time.Date(2026, 7, 10, 0, 0, 0, 0, time.UTC)
	in := inspect.Inspector{Now: func() time.Time { return now }}
	for _, line := range lines {
		want := in.Inspect(line)
		if slices.ContainsFunc(want.Errors, func(e inspect.Error) bool {
			return e.Code == "non_printable" || e.Code == "not_utf8" || e.Code == "empty"
		}) {
			continue // the station refuses these before validation
		}
		data := line
		for _, gs := range []string{"<GS>", "<gs>", `\x1d`, `\x1D`} {
			data = strings.ReplaceAll(data, gs, "\x1d")
		}
		sym, body := station.ParseAIM([]byte(data))
		got := classify(sym, body, nil, now)
		var wantCodes, gotCodes []string
		for _, e := range want.Errors {
			wantCodes = append(wantCodes, e.Code)
		}
		for _, r := range got.syntax {
			_, code, _ := strings.Cut(r.Code, ".")
			gotCodes = append(gotCodes, code)
		}
		if got.scheme != want.Scheme || !slices.Equal(gotCodes, wantCodes) {
			t.Errorf("%q: scheme %s, errors %v; inspect says %s, %v", line, got.scheme, gotCodes, want.Scheme, wantCodes)
		}
		if want.Serial != "" && got.serial != want.Serial || want.Lot != got.lot || want.GTIN != got.gtin {
			t.Errorf("%q: serial %q lot %q gtin %q; inspect says %q %q %q", line, got.serial, got.lot, got.gtin, want.Serial, want.Lot, want.GTIN)
		}
	}
}

func TestKeySet(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 100, 5000, 70000} {
		var hs []uint64
		var vs []uint32
		for i := range n {
			hs, vs = append(hs, valueHash(strconv.Itoa(i))), append(vs, uint32(i))
		}
		if n > 0 {
			// Duplicates: the smaller value wins.
			hs, vs = append(hs, hs[0], hs[n-1]), append(vs, 99999, 0)
		}
		ks := newKeySet(hs, vs)
		if ks.Len() != n {
			t.Errorf("n=%d: Len %d", n, ks.Len())
		}
		for i := range n {
			want := uint32(i)
			if i == n-1 {
				want = 0
			}
			v, ok := ks.lookup(valueHash(strconv.Itoa(i)))
			if !ok || v != want {
				t.Errorf("n=%d: key %d: %d %v", n, i, v, ok)
			}
			if _, ok := ks.lookup(valueHash(strconv.Itoa(i) + "y")); ok {
				t.Errorf("n=%d: absent key %d found", n, i)
			}
		}
		if !slices.IsSorted(ks.hashes) {
			t.Errorf("n=%d: not sorted", n)
		}
		for _, h := range []uint64{0, 1, 1<<63 - 1, 1 << 63, ^uint64(0)} {
			ks.lookup(h) // the extremes of the bucket index do not panic
		}
	}
	// One key listed many times over, values descending: no quadratic sort.
	hs, vs := make([]uint64, 100000), make([]uint32, 100000)
	for i := range hs {
		hs[i], vs[i] = 42, uint32(len(hs)-i)
	}
	ks := newKeySet(hs, vs)
	if v, ok := ks.lookup(42); ks.Len() != 1 || !ok || v != 1 {
		t.Errorf("repeated key: len %d, %d %v", ks.Len(), v, ok)
	}
	// Membership only.
	ks = newKeySet([]uint64{3, 1, 2}, nil)
	if _, ok := ks.lookup(2); !ok || ks.Len() != 3 {
		t.Error("membership set")
	}
}

func TestHashListMatchesStrings(t *testing.T) {
	var l hashList
	if err := l.UnmarshalJSON([]byte(` [ "A1" , "B\u00e9\"" ,"\/x"] `)); err != nil || l.problem != "" {
		t.Fatalf("%v %q", err, l.problem)
	}
	want := []uint64{valueHash("A1"), valueHash("Bé\""), valueHash("/x")}
	if !slices.Equal(l.hashes, want) {
		t.Errorf("hashes differ from the strings'")
	}
	for _, bad := range []string{`"A"`, `[1]`, `["A",]`, `["A"`, `[""]`, `{}`, `["\u0000"]`, `["` + strings.Repeat("x", 300) + `"]`} {
		l := hashList{}
		l.UnmarshalJSON([]byte(bad))
		if l.problem == "" {
			t.Errorf("%s: no problem reported", bad)
		}
	}
}

func TestUnknownFields(t *testing.T) {
	var got []string
	unknownFields([]byte(`{"products":[{"re\u0071uire":[],"serial":{"patern":"x"}},{"gtin":"1","x":{"require":1}}],
		"deny":[{"serials":["a"],"note":"n"}],"expected":null,"y":[1]}`), payloadShape(), func(p string) { got = append(got, p) })
	want := []string{"products[0].serial.patern", "products[1].x", "deny[0].note", "y"}
	if !slices.Equal(got, want) {
		t.Errorf("unknown fields %v, want %v", got, want)
	}
}
