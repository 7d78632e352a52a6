package gs1

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/scangw/scangw/station/checkdigit"
)

// dictEntry is an entry of the dictionary file read by a deliberately
// different, regexp-based reader, so that the table the package builds is
// checked against the file rather than against itself.
type dictEntry struct {
	ai             string
	flags          string
	minLen, maxLen int
	title          string
}

var (
	entryRE     = regexp.MustCompile(`^(\d{2,4})(?:-(\d{2,4}))?\s+([*?]*)\s*(.*?)\s*(?:#\s*(.*))?$`)
	componentRE = regexp.MustCompile(`^(\[)?([NXYZ])(\.\.)?(\d+)\]?(?:,|$)`)
)

func fileEntries(t *testing.T) []dictEntry {
	t.Helper()
	var out []dictEntry
	for _, line := range strings.Split(dictionaryText, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		m := entryRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("cannot read dictionary line %q", line)
		}
		lo, _ := strconv.Atoi(m[1])
		hi := lo
		if m[2] != "" {
			hi, _ = strconv.Atoi(m[2])
		}
		var minLen, maxLen int
		for _, f := range strings.Fields(m[4]) {
			c := componentRE.FindStringSubmatch(f)
			if c == nil {
				continue // an attribute
			}
			n, _ := strconv.Atoi(c[4])
			maxLen += n
			switch {
			case c[1] == "[":
			case c[3] == "..":
				minLen++
			default:
				minLen += n
			}
		}
		for v := lo; v <= hi; v++ {
			out = append(out, dictEntry{
				ai:     fmt.Sprintf("%0*d", len(m[1]), v),
				flags:  m[3],
				minLen: minLen,
				maxLen: maxLen,
				title:  strings.TrimSpace(m[5]),
			})
		}
	}
	return out
}

// TestDictionaryCoverage: the table holds every AI of the embedded Barcode
// Syntax Dictionary, with the file's flags, lengths and title, and nothing
// else.
func TestDictionaryCoverage(t *testing.T) {
	entries := fileEntries(t)
	if len(entries) != len(dict.order) {
		t.Fatalf("file has %d AIs, table %d", len(entries), len(dict.order))
	}
	for i, e := range entries {
		d := dict.exact(e.ai)
		if d == nil {
			t.Fatalf("AI %s missing from the table", e.ai)
		}
		if dict.order[i] != d {
			t.Fatalf("AI %s out of order", e.ai)
		}
		if d.predefined != strings.Contains(e.flags, "*") || d.dlAttr != strings.Contains(e.flags, "?") {
			t.Errorf("AI %s flags: predefined=%v dlAttr=%v, file %q", e.ai, d.predefined, d.dlAttr, e.flags)
		}
		if d.minLen != e.minLen || d.maxLen != e.maxLen {
			t.Errorf("AI %s length %d..%d, file %d..%d", e.ai, d.minLen, d.maxLen, e.minLen, e.maxLen)
		}
		if d.title != e.title || Title(e.ai) != e.title {
			t.Errorf("AI %s title %q, file %q", e.ai, d.title, e.title)
		}
		if !Known(e.ai) {
			t.Errorf("Known(%s) = false", e.ai)
		}
	}
	if got := AIs(); len(got) != len(entries) || got[0] != "00" || got[len(got)-1] != "99" {
		t.Fatalf("AIs() = %d entries from %s to %s", len(got), got[0], got[len(got)-1])
	}
	t.Logf("%d dictionary entries, %d AIs", dict.entries, len(entries))
}

// TestPrefixFree: no AI is the prefix of another, which is what lets an
// element string be read without lookahead (GenSpecs 3.1).
func TestPrefixFree(t *testing.T) {
	ais := AIs()
	for _, a := range ais {
		for _, b := range ais {
			if a != b && strings.HasPrefix(b, a) {
				t.Fatalf("AI %s is a prefix of %s", a, b)
			}
		}
	}
}

// TestPredefinedLengths: the dictionary's "*" flags agree with GenSpecs
// figure 7.8.5-2, whose list of two-digit prefixes with predefined length
// GS1 has frozen so old readers stay correct.
func TestPredefinedLengths(t *testing.T) {
	frozen := map[string]int{
		"00": 20, "01": 16, "02": 16, "03": 16, "04": 18, "11": 8, "12": 8, "13": 8, "14": 8,
		"15": 8, "16": 8, "17": 8, "18": 8, "19": 8, "20": 4, "31": 10, "32": 10, "33": 10,
		"34": 10, "35": 10, "36": 10, "41": 16,
	}
	for _, d := range dict.order {
		total, isFrozen := frozen[d.ai[:2]]
		if d.predefined != isFrozen {
			t.Errorf("AI %s: predefined=%v, figure 7.8.5-2 says %v", d.ai, d.predefined, isFrozen)
		}
		if d.predefined && len(d.ai)+d.maxLen != total {
			t.Errorf("AI %s: %d characters with the AI, figure 7.8.5-2 says %d", d.ai, len(d.ai)+d.maxLen, total)
		}
	}
}

// TestEveryAIAcceptsAValidValue builds a value for each AI from its
// components and linters and parses it in both forms: every AI of the
// dictionary is reachable and its rules are satisfiable.
func TestEveryAIAcceptsAValidValue(t *testing.T) {
	p := Parser{Now: testNow, SkipPairing: true}
	for _, d := range dict.order {
		v := sampleValue(t, d)
		r, err := p.ParseBracketed("(" + d.ai + ")" + v)
		if err != nil {
			t.Errorf("(%s)%s: %v", d.ai, v, err)
			continue
		}
		es := r.ElementString()
		if r2, err := p.Parse(es); err != nil || r2.Bracketed() != "("+d.ai+")"+v {
			t.Errorf("element string %q: %v", es, err)
		}
	}
}

func sampleValue(t *testing.T, d *aiDef) string {
	var b strings.Builder
	for _, c := range d.comps {
		b.WriteString(sampleComponent(t, d.ai, c))
	}
	return b.String()
}

func sampleComponent(t *testing.T, ai string, c component) string {
	names := make([]string, len(c.linters))
	for i, l := range c.linters {
		names[i] = l.name
	}
	has := func(n string) bool {
		for _, x := range names {
			if x == n {
				return true
			}
		}
		return false
	}
	pick := func(s string) string {
		if len(s) < c.min || len(s) > c.max {
			t.Fatalf("AI %s: sample %q does not fit %d..%d", ai, s, c.min, c.max)
		}
		return s
	}
	switch {
	case has("csum"):
		data := ("0614141" + strings.Repeat("1", 20))[:c.max-1]
		cd, _ := checkdigit.GS1Mod10(data)
		return data + string(cd)
	case has("csumalpha"):
		return pick("1987654Ad4X4bL5ttr2310c2K")
	case has("key"):
		return pick("0614141ABC")
	case has("yymmd0"), has("yymmdd"):
		return "250615"
	case has("yyyymmdd"), has("yyyymmd0"):
		return "20250615"
	case has("hhmi"):
		return "1230"
	case has("hh"):
		return "12"
	case has("mi"), has("ss"):
		return "30"
	case has("iso3166"), has("iso3166999"):
		return "250"
	case has("iso4217"):
		return "978"
	case has("iso3166alpha2"):
		return "FR"
	case has("latitude"):
		return "0900000000"
	case has("longitude"):
		return "1800000000"
	case has("yesno"), has("winding"), has("iso5218"):
		return "1"
	case has("hyphen"):
		return "-"
	case has("zero"):
		return "0"
	case has("nonzero"):
		return strings.Repeat("1", c.max)
	case has("pieceoftotal"):
		return "0102"
	case has("posinseqslash"):
		return "1/2"
	case has("mediatype"):
		return "01"
	case has("packagetype"):
		return pick("BX")
	case has("importeridx"):
		return "A"
	case has("iban"):
		return pick("DE91100000000123456789")
	case has("nozeroprefix"):
		return pick("123")
	case has("pcenc"):
		return pick("A%20B")
	case has("couponcode"):
		return pick("012345612345611110123")
	case has("couponposoffer"):
		return pick("001234561234560123456")
	case len(names) > 0:
		t.Fatalf("AI %s: no sample for linters %v", ai, names)
	}
	switch c.cset {
	case 'N':
		return strings.Repeat("1", c.min)
	case 'Z':
		return strings.Repeat("Q", max(c.min, 3))
	}
	return strings.Repeat("A", c.min)
}

// TestLintersUsed lists the dictionary's linters and checks each has an
// implementation (loading would fail otherwise) and is exercised.
func TestLintersUsed(t *testing.T) {
	used := map[string]bool{}
	for _, d := range dict.order {
		for _, c := range d.comps {
			for _, l := range c.linters {
				used[l.name] = true
			}
		}
	}
	want := strings.Fields(`csum csumalpha key keyoff1 yymmd0 yymmdd yyyymmdd hhmi hh mi ss
		iso3166 iso3166999 iso3166alpha2 iso4217 iso5218 pcenc latitude longitude yesno
		hyphen nonzero zero winding pieceoftotal posinseqslash mediatype packagetype
		importeridx iban nozeroprefix hasnondigit couponcode couponposoffer`)
	for _, n := range want {
		if !used[n] {
			t.Errorf("linter %s not used by the dictionary any more", n)
		}
		delete(used, n)
	}
	for n := range used {
		t.Errorf("dictionary uses linter %s that this test does not know", n)
	}
}

func TestLoadDictionaryErrors(t *testing.T) {
	for _, bad := range []string{
		"",
		"01 *? N14,nosuchlinter",
		"01 *? N..14",
		"1 N1",
		"01 N1\n01 N1",
		"0x N1",
		"05-03 N1",
		"01 req=0x N1",
		"01 X..2 N1",
		"01 [N1] N1",
		"01 ?",
		"01 [N1,csum",
	} {
		if _, err := loadDictionary(bad); err == nil {
			t.Errorf("loadDictionary(%q) accepted", bad)
		}
	}
}

// TestCodeLists compares the lists with an independent transcription: the
// bitmaps GS1's reference linters publish, decoded.
func TestCodeLists(t *testing.T) {
	decode := func(words []uint64, n int) []int {
		var out []int
		for v := 0; v < n; v++ {
			if words[v/64]&(0x8000000000000000>>(v%64)) != 0 {
				out = append(out, v)
			}
		}
		return out
	}
	ref3166 := decode([]uint64{0x08a888898888b888, 0x8aa80a2888888888, 0x0888888a22232889, 0x88188a2221e322a2,
		0x2a2a180088888888, 0x888a888888888888, 0x888288a2622a22a2, 0x222222228808b888,
		0x8888970808222222, 0x2de102888888a222, 0x320a1b222222a203, 0xe20808c8088888a8,
		0x8888889a89002021, 0xe080222a00082102, 0, 0}, 1000)
	ref4217 := decode([]uint64{0x008800008808b808, 0x8880082080880808, 0x0880808800220009, 0x8010820202822000,
		0x0202000008000000, 0x8888088888888080, 0x088288a262222002, 0x022200008800a080,
		0x88080c0008220200, 0x2022028880000020, 0x1202000000202202, 0xa200008000088888,
		0x0088880081002020, 0x2080002800002200, 0x0400000dfeadbfdf, 0xfdfdfce225000000}, 1000)
	refAlpha2 := decode([]uint64{0x1e9afb77f7bdbb7b, 0xe4fc21a8012b0070, 0x003a900df9dfa800, 0xb160181ef00202c0,
		0x00b8d42f8281f2bf, 0x3fffeba4d2100080, 0x023cf1ca80000002, 0x008a8fbfe75cddf9,
		0x59820820eaa10200, 0x4002000000000800, 0x1020020080000000}, 676)

	var got3166, got4217, gotAlpha2 []int
	for v := 0; v < 1000; v++ {
		s := fmt.Sprintf("%03d", v)
		if IsCountry(s) {
			got3166 = append(got3166, v)
		}
		if IsCurrency(s) {
			got4217 = append(got4217, v)
		}
	}
	for v := 0; v < 676; v++ {
		if IsCountryAlpha2(string([]byte{byte('A' + v/26), byte('A' + v%26)})) {
			gotAlpha2 = append(gotAlpha2, v)
		}
	}
	if fmt.Sprint(got3166) != fmt.Sprint(ref3166) || len(got3166) != 249 {
		t.Errorf("ISO 3166 numeric: %d codes, differs from the reference's %d", len(got3166), len(ref3166))
	}
	if fmt.Sprint(gotAlpha2) != fmt.Sprint(refAlpha2) || len(gotAlpha2) != 249 {
		t.Errorf("ISO 3166 alpha-2: %d codes, differs from the reference's %d", len(gotAlpha2), len(refAlpha2))
	}
	// ISO 4217: the reference list lacks 926 (VED, Venezuela's digital
	// bolívar, ISO 4217 amendment 170 of 2021); ours has it.
	want4217 := append([]int{}, ref4217...)
	want4217 = insertSorted(want4217, 926)
	if fmt.Sprint(got4217) != fmt.Sprint(want4217) {
		t.Errorf("ISO 4217: %v\nwant %v", got4217, want4217)
	}
	for _, c := range []string{"978", "840", "826", "392", "756"} { // EUR USD GBP JPY CHF
		if !IsCurrency(c) {
			t.Errorf("%s not a currency", c)
		}
	}
	for _, c := range []string{"", "97", "9780", "97A", "000"} {
		if IsCurrency(c) || IsCountry(c) {
			t.Errorf("%q accepted", c)
		}
	}
	for _, c := range []string{"", "F", "FRA", "fr", "F1"} {
		if IsCountryAlpha2(c) {
			t.Errorf("%q accepted as alpha-2", c)
		}
	}
	if len(codes.pkg) < 300 || !codes.pkg["BX"] || !codes.pkg["PX"] || codes.pkg["QQQ"] {
		t.Errorf("package type list: %d entries", len(codes.pkg))
	}
}

func insertSorted(s []int, v int) []int {
	for i, x := range s {
		if x > v {
			return append(s[:i], append([]int{v}, s[i:]...)...)
		}
	}
	return append(s, v)
}
