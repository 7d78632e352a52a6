package serials

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/station/checkdigit"
)

// values is what the tests render with: 14 February 2026 is day 045.
var values = Values{
	Site: "WH1", Gateway: "gw-7", Station: "bench2",
	GTIN: "09506000134352", Lot: "L0T-9", Expiry: "261231",
	Time: time.Date(2026, 2, 14, 23, 59, 0, 0, time.FixedZone("CET", 3600)),
	Seq:  42,
}

// checkOf computes a check character with checkdigit itself, not with
// the code under test.
func checkOf(t *testing.T, alg, data string) string {
	t.Helper()
	a, _ := checkdigit.ByName(alg)
	c, err := a.Compute(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRender(t *testing.T) {
	pair := checkOf(t, "gs1-pair", "WH1.2602140000042")
	wide := ParseOptions{MaxLen: 40}
	for _, tc := range []struct {
		name, tmpl string
		opts       ParseOptions
		want       string
	}{
		// The check covers the characters its alphabet holds: letters and
		// digits for mod37-2, digits only for luhn.
		{"issue example", "{site}-{yy}{ddd}-{seq:6}{check:mod37-2}", ParseOptions{},
			"WH1-26045-000042" + checkOf(t, "mod37-2", "WH126045000042")},
		{"gtin and counter", "{gtin}.{seq:8}", wide, "09506000134352.00000042"},
		{"prefix and luhn", "SN{seq:9}{check:luhn}", ParseOptions{},
			"SN000000042" + checkOf(t, "luhn", "000000042")},
		{"gs1 pair covers everything", "{site}.{yy}{mm}{dd}{seq:7}{check:gs1-pair}", ParseOptions{},
			"WH1.2602140000042" + pair},
		{"all the ids", "{site}{gateway}{station}{seq:2}", ParseOptions{}, "WH1gw-7bench242"},
		{"four-digit year", "{yyyy}{seq:4}", ParseOptions{}, "20260042"},
		{"lot and expiry", "{lot}/{expiry}/{seq:3}", ParseOptions{}, "L0T-9/261231/042"},
		{"time is taken as given, not in UTC", "{dd}{seq:2}", ParseOptions{}, "1442"},
		{"literal braces", "{{{seq:3}}}", ParseOptions{ASCII: true}, "{042}"},
		{"non-GS1 characters", "#{seq:4}@", ParseOptions{ASCII: true}, "#0042@"},
		{"counter at its widest", "{seq:18}", ParseOptions{}, "000000000000000042"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := tc.opts.Parse(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tmpl.Render(values)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Render = %q, want %q", got, tc.want)
			}
			if tmpl.String() != tc.tmpl {
				t.Fatalf("String = %q", tmpl.String())
			}
			for _, known := range []Values{values, {}} {
				seq, err := tmpl.Check(got, known)
				if err != nil || seq != values.Seq {
					t.Fatalf("Check(%q, %+v) = %d, %v", got, known, seq, err)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		tmpl string
		opts ParseOptions
		want string
	}{
		{"SN-{sq:6}", ParseOptions{}, "template: offset 3: unknown placeholder {sq:6}"},
		{"SN-", ParseOptions{}, "template: offset 3: no counter; a template needs exactly one {seq:N}"},
		{"", ParseOptions{}, "template: offset 0: no counter; a template needs exactly one {seq:N}"},
		{"{seq:2}-{seq:3}", ParseOptions{}, "template: offset 8: second counter {seq:3}; a template has exactly one {seq:N}"},
		{"{seq}", ParseOptions{}, "template: offset 0: {seq}: the counter's width N must be 1 to 18, as in {seq:6}"},
		{"{seq:0}", ParseOptions{}, "template: offset 0: {seq:0}: the counter's width N must be 1 to 18, as in {seq:6}"},
		{"{seq:19}", ParseOptions{MaxLen: 30}, "template: offset 0: {seq:19}: the counter's width N must be 1 to 18, as in {seq:6}"},
		{"{seq:+6}", ParseOptions{}, "template: offset 0: {seq:+6}: the counter's width N must be 1 to 18, as in {seq:6}"},
		{"{seq:6}{check:gs1}X", ParseOptions{}, "template: offset 7: {check:gs1} must be the last thing in the template"},
		{"{check:gs1}{seq:6}", ParseOptions{}, "template: offset 0: {check:gs1} must be the last thing in the template"},
		{"{seq:6}{check:luhn}{check:luhn}", ParseOptions{}, "template: offset 7: {check:luhn} must be the last thing in the template"},
		{"{seq:6}{check:crc}", ParseOptions{}, `template: offset 7: {check:crc}: unknown check algorithm "crc" (one of gs1, luhn, mod11-2, mod37-2, mod43, gs1-pair)`},
		{"{seq:6}{check}", ParseOptions{}, `template: offset 7: {check}: unknown check algorithm "" (one of gs1, luhn, mod11-2, mod37-2, mod43, gs1-pair)`},
		{"{seq:6}{check:mod43}", ParseOptions{}, `template: offset 7: {check:mod43}: its check character may be " ", which a serial may not hold (GS1 CSET 82)`},
		{"{seq:6}{check:mod43}", ParseOptions{ASCII: true}, `template: offset 7: {check:mod43}: its check character may be " ", which a serial may not hold (visible ASCII)`},
		{"{site:3}{seq:6}", ParseOptions{}, "template: offset 0: {site:3}: {site} takes no argument"},
		{"{Seq:6}", ParseOptions{}, "template: offset 0: unknown placeholder {Seq:6}"},
		{"{hh}{seq:6}", ParseOptions{}, "template: offset 0: unknown placeholder {hh}"},
		{"SN {seq:6}", ParseOptions{}, `template: offset 2: character " " is not allowed in a serial (GS1 CSET 82)`},
		{"SN#{seq:6}", ParseOptions{}, `template: offset 2: character "#" is not allowed in a serial (GS1 CSET 82)`},
		{"é{seq:6}", ParseOptions{ASCII: true}, `template: offset 0: character "\xc3" is not allowed in a serial (visible ASCII)`},
		{"{{{seq:6}}}", ParseOptions{}, `template: offset 0: character "{" is not allowed in a serial (GS1 CSET 82)`},
		{"SN{seq:6}}", ParseOptions{}, "template: offset 9: } without {; write }} for a literal brace"},
		{"SN{seq:6", ParseOptions{}, "template: offset 2: unclosed {"},
		{"{gtin}.{seq:8}", ParseOptions{}, "template: offset 7: {seq:8} makes the serial at least 23 characters, over the limit of 20"},
		{"{gtin}{seq:6}{check:gs1-pair}", ParseOptions{}, "template: offset 13: {check:gs1-pair} makes the serial at least 22 characters, over the limit of 20"},
		{"{seq:18}ABC", ParseOptions{}, `template: offset 10: "C" makes the serial at least 21 characters, over the limit of 20`},
		{"{site}{seq:6}", ParseOptions{MaxLen: 6}, "template: offset 6: {seq:6} makes the serial at least 7 characters, over the limit of 6"},
	} {
		t.Run(tc.tmpl, func(t *testing.T) {
			_, err := tc.opts.Parse(tc.tmpl)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

// Every algorithm checkdigit offers is either usable or refused on
// purpose: one added to ByName must be added to checkChars.
func TestCheckCharsCoverCheckdigit(t *testing.T) {
	for _, name := range checkdigit.Names() {
		if _, ok := checkChars[name]; !ok {
			t.Errorf("checkChars has no entry for %s", name)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		tmpl string
		edit func(*Values)
		want string
	}{
		{"{site}{seq:3}", func(v *Values) { v.Site = "" }, "serial: {site}: missing"},
		{"{station}{seq:3}", func(v *Values) { v.Station = "a/b" }, `serial: {station}: "a/b" is not an id: 1 to 64 of [A-Za-z0-9._-]`},
		{"{gateway}{seq:3}", func(v *Values) { v.Gateway = "" }, "serial: {gateway}: missing"},
		{"{gtin}{seq:3}", func(v *Values) { v.GTIN = "" }, "serial: {gtin}: missing"},
		{"{gtin}{seq:3}", func(v *Values) { v.GTIN = "9506000134352" }, `serial: {gtin}: "9506000134352" is not a GTIN: 14 digits with their check digit`},
		{"{gtin}{seq:3}", func(v *Values) { v.GTIN = "09506000134353" }, `serial: {gtin}: "09506000134353" is not a GTIN: 14 digits with their check digit`},
		{"{lot}{seq:3}", func(v *Values) { v.Lot = "" }, "serial: {lot}: missing"},
		{"{lot}{seq:3}", func(v *Values) { v.Lot = "A B" }, `serial: {lot}: "A B" is not a lot: 1 to 20 characters a serial may hold`},
		{"{expiry}{seq:3}", func(v *Values) { v.Expiry = "" }, "serial: {expiry}: missing"},
		{"{expiry}{seq:3}", func(v *Values) { v.Expiry = "261301" }, `serial: {expiry}: "261301" is not a date YYMMDD`},
		{"{expiry}{seq:3}", func(v *Values) { v.Expiry = "250229" }, `serial: {expiry}: "250229" is not a date YYMMDD`},
		{"{expiry}{seq:3}", func(v *Values) { v.Expiry = "260431" }, `serial: {expiry}: "260431" is not a date YYMMDD`},
		{"{ddd}{seq:3}", func(v *Values) { v.Time = time.Time{} }, "serial: {ddd}: no time of issue"},
		{"{yyyy}{seq:3}", func(v *Values) { v.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "serial: {yyyy}: year 10000 is out of range"},
		{"{seq:3}", func(v *Values) { v.Seq = 1000 }, "serial: {seq:3}: counter 1000 does not fit 3 digits"},
		{"{station}-{seq:6}{check:luhn}", func(v *Values) { v.Station = "receiving-bench" }, "serial: too long: 23 characters, over the limit of 20"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			tmpl, err := Parse(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			v := values
			tc.edit(&v)
			s, err := tmpl.Render(v)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Render = %q, %v; want error %s", s, err, tc.want)
			}
		})
	}
	// Dates that are right: a leap day, day 00 for the month's end.
	tmpl, _ := Parse("{expiry}{seq:3}")
	for _, e := range []string{"240229", "260200", "261231", "000229"} {
		v := values
		v.Expiry = e
		if _, err := tmpl.Render(v); err != nil {
			t.Errorf("expiry %s: %v", e, err)
		}
	}
}

// Every algorithm a serial may use round-trips, and catches every change
// of a counter digit.
func TestCheckAlgorithms(t *testing.T) {
	for _, alg := range checkdigit.Names() {
		if alg == "mod43" {
			continue // refused: TestParseErrors
		}
		t.Run(alg, func(t *testing.T) {
			tmpl, err := Parse("{site}.{yy}{mm}{dd}-{seq:5}{check:" + alg + "}")
			if err != nil {
				t.Fatal(err)
			}
			v := values
			for seq := uint64(0); seq <= tmpl.MaxSeq(); seq += 997 {
				v.Seq = seq
				s, err := tmpl.Render(v)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := tmpl.Check(s, Values{}); err != nil || got != seq {
					t.Fatalf("Check(%q) = %d, %v; want %d", s, got, err, seq)
				}
				start := strings.LastIndexByte(s, '-') + 1
				for i := start; i < start+5; i++ {
					for d := byte('0'); d <= '9'; d++ {
						if d == s[i] {
							continue
						}
						bad := s[:i] + string(d) + s[i+1:]
						if _, err := tmpl.Check(bad, Values{}); err == nil {
							t.Fatalf("Check(%q) accepted a changed digit of %q", bad, s)
						}
					}
				}
			}
		})
	}
}

func TestCheck(t *testing.T) {
	issue, _ := Parse("{site}-{yy}{ddd}-{seq:6}{check:mod37-2}")
	good, err := issue.Render(values)
	if err != nil {
		t.Fatal(err)
	}
	wrongCheck := good[:len(good)-1] + "0"
	if good[len(good)-1] == '0' {
		wrongCheck = good[:len(good)-1] + "1"
	}
	ambiguous, _ := Parse("{site}-{seq:4}-{lot}")
	for _, tc := range []struct {
		name   string
		tmpl   *Template
		serial string
		known  Values
		want   string // "" for success with seq 42
	}{
		{"any site", issue, "b-2.x-26045-000042" + checkOf(t, "mod37-2", "226045000042"), Values{}, ""},
		{"known site", issue, good, Values{Site: "WH1"}, ""},
		{"other site", issue, good, Values{Site: "WH2"}, "serial: offset 0: does not fit {site}-{yy}{ddd}-{seq:6}{check:mod37-2}: want {site}"},
		{"wrong check", issue, wrongCheck, Values{}, `serial: offset 16: check character "` + wrongCheck[16:] + `" is wrong ({check:mod37-2} wants "` + good[16:] + `")`},
		{"day 000", issue, "WH1-26000-000042K", Values{Site: "WH1"}, "serial: offset 6: does not fit {site}-{yy}{ddd}-{seq:6}{check:mod37-2}: want {ddd}"},
		{"short counter", issue, "WH1-26045-00042K", Values{}, "serial: offset 10: does not fit {site}-{yy}{ddd}-{seq:6}{check:mod37-2}: want {seq:6}"},
		{"no check character", issue, "W", Values{}, "serial: offset 0: too short for {site}-{yy}{ddd}-{seq:6}{check:mod37-2}"},
		{"over the limit", issue, "WH1-26045-000042KKKKK", Values{}, "serial: 21 characters, over the limit of 20"},
		{"bad site character", issue, "W/1-26045-000042K", Values{}, `serial: offset 1: does not fit {site}-{yy}{ddd}-{seq:6}{check:mod37-2}: want "-"`},
		{"ambiguous", ambiguous, "A-1234-5678-B", Values{}, "serial: fits {site}-{seq:4}-{lot} in more than one way (counter 1234 or 5678); give the ids it was made with"},
		{"ambiguity resolved by the site", ambiguous, "A-1234-0042-B", Values{Site: "A-1234"}, ""},
		{"ambiguity resolved by the lot", ambiguous, "A-0042-5678-B", Values{Lot: "5678-B"}, ""},
		{"same counter either way", ambiguous, "A-0042-0042", Values{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq, err := tc.tmpl.Check(tc.serial, tc.known)
			if tc.want == "" {
				if err != nil || seq != 42 {
					t.Fatalf("Check(%q) = %d, %v; want 42", tc.serial, seq, err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Check(%q) = %d, %v\nwant error %s", tc.serial, seq, err, tc.want)
			}
		})
	}
}

// A template whose parts can each take many lengths is matched in
// polynomial time: 20 unknown ids in a serial of 60 characters.
func TestCheckManyVariableParts(t *testing.T) {
	opts := ParseOptions{MaxLen: 80}
	tmpl, err := opts.Parse(strings.Repeat("{site}", 20) + "{seq:2}")
	if err != nil {
		t.Fatal(err)
	}
	serial := strings.Repeat("abc", 20)[:58] + "42"
	if seq, err := tmpl.Check(serial, Values{}); err != nil || seq != 42 {
		t.Fatalf("Check = %d, %v", seq, err)
	}
}

func TestNeeds(t *testing.T) {
	for _, tc := range []struct {
		tmpl              string
		gtin, lot, expiry bool
	}{
		{"{site}-{seq:6}", false, false, false},
		{"{gtin}{seq:6}", true, false, false},
		{"{lot}{expiry}{seq:6}", false, true, true},
	} {
		tmpl, err := Parse(tc.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if g, l, e := tmpl.Needs(); g != tc.gtin || l != tc.lot || e != tc.expiry {
			t.Errorf("%s: Needs = %v %v %v", tc.tmpl, g, l, e)
		}
	}
}

func TestMaxSeq(t *testing.T) {
	for w := 1; w <= maxSeqWidth; w++ {
		tmpl, err := Parse("{seq:" + strconv.Itoa(w) + "}")
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Repeat("9", w)
		if got := strconv.FormatUint(tmpl.MaxSeq(), 10); got != want {
			t.Fatalf("width %d: MaxSeq = %s", w, got)
		}
		v := values
		v.Seq = tmpl.MaxSeq()
		if s, err := tmpl.Render(v); err != nil || s != want {
			t.Fatalf("width %d: Render = %q, %v", w, s, err)
		}
	}
}

func TestDefaultCharsetIsCSET82(t *testing.T) {
	var got []byte
	for c := range 256 {
		if cset82[c] {
			got = append(got, byte(c))
		}
	}
	if len(got) != 82 || !slices.Contains(got, '_') || slices.Contains(got, '#') {
		t.Fatalf("CSET 82 holds %d characters: %q", len(got), got)
	}
}
