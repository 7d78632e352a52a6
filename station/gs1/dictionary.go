package gs1

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

// dictionaryText is GS1's Barcode Syntax Dictionary, embedded unchanged
// (see NOTICE: Apache-2.0, © GS1 AISBL, BWIPP and Zint projects). The AI
// table is built from it when the package loads, so the table and the
// file it comes from cannot drift apart; a test checks that every entry of
// the file made it into the table.
//
//go:embed gs1-syntax-dictionary.txt
var dictionaryText string

// component is one part of an AI's data field, e.g. "N3,iso4217" of AI
// (3910). Only the last component may be variable-length, and optional
// components only follow mandatory ones (dictionary header).
type component struct {
	cset     byte // 'N', 'X', 'Y' or 'Z'
	min, max int
	optional bool
	linters  []linter
}

// pattern is an AI or an AI pattern of a req/ex attribute: 'n' stands for
// any digit ("31nn", "310n").
type pattern string

func (p pattern) match(ai string) bool {
	if len(p) != len(ai) {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] != 'n' && p[i] != ai[i] {
			return false
		}
	}
	return true
}

// aiDef is one AI of the table.
type aiDef struct {
	ai    string
	title string
	// predefined is the "*" flag: the AI's length is fixed by its first two
	// digits (GenSpecs figure 7.8.5-2) and no FNC1 follows it.
	predefined bool
	// dlAttr is the "?" flag: the AI may be a Digital Link query attribute.
	dlAttr         bool
	comps          []component
	minLen, maxLen int
	// req holds one entry per "req=" attribute; each must be satisfied by
	// one of its alternatives, and an alternative ("01+21") by all of its
	// patterns.
	req [][][]pattern
	// ex holds the patterns of all "ex=" attributes.
	ex []pattern
	// dlKey marks a Digital Link primary key; dlQual lists its alternative
	// qualifier sequences ("22,10,21|235").
	dlKey  bool
	dlQual [][]string
	// key marks a GS1 identification key: a component carries the key or
	// keyoff1 linter, or the AI is a Digital Link primary key.
	key bool
	// needsYear marks AIs whose linters resolve two-digit years.
	needsYear bool
}

// table is the parsed dictionary.
type table struct {
	two   [100]*aiDef
	three [1000]*aiDef
	four  [10000]*aiDef
	order []*aiDef // dictionary order, ranges expanded
	// entries counts the dictionary's entry lines (a range is one entry).
	entries int
}

var dict = mustLoadDictionary()

func mustLoadDictionary() *table {
	t, err := loadDictionary(dictionaryText)
	if err != nil {
		// The embedded file is part of the build, not input: a failure here
		// is a programming error that TestDictionary reports first.
		panic(err)
	}
	return t
}

// flagChars are the characters the dictionary reserves for flags.
const flagChars = "*?!\"$%&'()+,-./:;<=>@[\\]^_`{|}~"

func loadDictionary(text string) (*table, error) {
	t := &table{}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := t.addEntry(line); err != nil {
			return nil, fmt.Errorf("gs1 dictionary line %d: %w", n+1, err)
		}
		t.entries++
	}
	if len(t.order) == 0 {
		return nil, fmt.Errorf("gs1 dictionary: no entries")
	}
	return t, nil
}

func (t *table) addEntry(line string) error {
	body, title, _ := strings.Cut(line, "#")
	fields := strings.Fields(body)
	if len(fields) < 2 {
		return fmt.Errorf("too few fields in %q", line)
	}
	first, last, err := aiRange(fields[0])
	if err != nil {
		return err
	}
	proto := aiDef{title: strings.TrimSpace(title)}
	rest := fields[1:]
	if strings.Trim(rest[0], flagChars) == "" {
		proto.predefined = strings.Contains(rest[0], "*")
		proto.dlAttr = strings.Contains(rest[0], "?")
		rest = rest[1:]
	}
	for _, f := range rest {
		if err := proto.addField(f); err != nil {
			return err
		}
	}
	if len(proto.comps) == 0 {
		return fmt.Errorf("no specification in %q", line)
	}
	if proto.predefined && proto.minLen != proto.maxLen {
		return fmt.Errorf("predefined-length AI %s has variable length", fields[0])
	}
	return t.putRange(&proto, fields[0], first, last)
}

// addField adds one field of an entry after its flags: a component of the
// specification or an attribute.
func (d *aiDef) addField(f string) error {
	switch {
	case isComponent(f):
		return d.addComponent(f)
	case strings.HasPrefix(f, "req="):
		alts, err := parseReq(f)
		if err != nil {
			return err
		}
		d.req = append(d.req, alts)
	case strings.HasPrefix(f, "ex="):
		for _, p := range strings.Split(f[len("ex="):], ",") {
			if !validPattern(p) {
				return fmt.Errorf("bad pattern %q in %q", p, f)
			}
			d.ex = append(d.ex, pattern(p))
		}
	case f == "dlpkey":
		d.dlKey = true
		d.key = true
	case strings.HasPrefix(f, "dlpkey="):
		d.dlKey = true
		d.key = true
		for _, seq := range strings.Split(f[len("dlpkey="):], "|") {
			d.dlQual = append(d.dlQual, strings.Split(seq, ","))
		}
	default:
		// Unknown attributes are allowed by the dictionary's grammar
		// (key-value pairs for other uses); they carry no rule we know.
	}
	return nil
}

// addComponent appends the specification component f, checking that it
// may follow the components before it.
func (d *aiDef) addComponent(f string) error {
	c, err := parseComponent(f)
	if err != nil {
		return err
	}
	if n := len(d.comps); n > 0 {
		prev := d.comps[n-1]
		if prev.min != prev.max {
			return fmt.Errorf("%q follows a variable-length component", f)
		}
		if prev.optional && !c.optional {
			return fmt.Errorf("mandatory %q follows an optional component", f)
		}
	}
	d.comps = append(d.comps, c)
	d.maxLen += c.max
	if !c.optional {
		d.minLen += c.min
	}
	for _, l := range c.linters {
		switch l.name {
		case "key", "keyoff1", "gcppos1", "gcppos2":
			d.key = true
		}
		if l.year {
			d.needsYear = true
		}
	}
	return nil
}

// parseReq parses a "req=" attribute: alternatives separated by commas,
// each a group of patterns joined by "+".
func parseReq(f string) ([][]pattern, error) {
	var alts [][]pattern
	for _, alt := range strings.Split(f[len("req="):], ",") {
		var group []pattern
		for _, p := range strings.Split(alt, "+") {
			if !validPattern(p) {
				return nil, fmt.Errorf("bad pattern %q in %q", p, f)
			}
			group = append(group, pattern(p))
		}
		alts = append(alts, group)
	}
	return alts, nil
}

// putRange puts a copy of proto into the table for every AI from first to
// last, written with as many digits as the entry's AI field ai has.
func (t *table) putRange(proto *aiDef, ai string, first, last int) error {
	width := len(ai)
	if i := strings.IndexByte(ai, '-'); i >= 0 {
		width = i
	}
	for v := first; v <= last; v++ {
		d := *proto // the slices are shared: entries of one range are identical
		d.ai = fmt.Sprintf("%0*d", width, v)
		if err := t.put(&d); err != nil {
			return err
		}
	}
	return nil
}

func (t *table) put(d *aiDef) error {
	v, _ := strconv.Atoi(d.ai)
	var slot **aiDef
	switch len(d.ai) {
	case 2:
		slot = &t.two[v]
	case 3:
		slot = &t.three[v]
	case 4:
		slot = &t.four[v]
	default:
		return fmt.Errorf("AI %q is not 2 to 4 digits", d.ai)
	}
	if *slot != nil {
		return fmt.Errorf("AI %s defined twice", d.ai)
	}
	*slot = d
	t.order = append(t.order, d)
	return nil
}

func aiRange(s string) (first, last int, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	if len(lo) < 2 || len(lo) > 4 || len(hi) != len(lo) || !allDigits(lo) || !allDigits(hi) {
		return 0, 0, fmt.Errorf("bad AI %q", s)
	}
	first, _ = strconv.Atoi(lo)
	last, _ = strconv.Atoi(hi)
	if last < first {
		return 0, 0, fmt.Errorf("bad AI range %q", s)
	}
	return first, last, nil
}

func validPattern(p string) bool {
	if len(p) < 2 || len(p) > 4 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if !isDigit(p[i]) && p[i] != 'n' {
			return false
		}
	}
	return true
}

// isComponent recognises a specification component: "N18,csum", "X..20",
// "[X..17]", "[N2],mi".
func isComponent(f string) bool {
	f = strings.TrimPrefix(f, "[")
	return len(f) >= 2 && strings.IndexByte("NXYZ", f[0]) >= 0 && (isDigit(f[1]) || f[1] == '.')
}

func parseComponent(f string) (component, error) {
	var c component
	spec, lints, _ := strings.Cut(f, ",")
	if strings.HasPrefix(spec, "[") {
		if !strings.HasSuffix(spec, "]") {
			return c, fmt.Errorf("unbalanced brackets in %q", f)
		}
		c.optional = true
		spec = spec[1 : len(spec)-1]
	}
	c.cset = spec[0]
	length := spec[1:]
	variable := strings.HasPrefix(length, "..")
	length = strings.TrimPrefix(length, "..")
	n, err := strconv.Atoi(length)
	if err != nil || n < 1 {
		return c, fmt.Errorf("bad length in %q", f)
	}
	c.min, c.max = n, n
	if variable {
		c.min = 1
	}
	if lints != "" {
		for _, name := range strings.Split(lints, ",") {
			l, ok := lookupLinter(name)
			if !ok {
				return c, fmt.Errorf("linter %q is not implemented", name)
			}
			c.linters = append(c.linters, l)
		}
	}
	return c, nil
}

// lookup finds the AI at the start of s (an element string): GS1 AIs are
// prefix-free, so at most one of the 2-, 3- and 4-digit candidates exists
// (TestPrefixFree). It returns the AI's length, or 0 if none matches.
func (t *table) lookup(s string) (*aiDef, int) {
	v := 0
	for n := 1; n <= 4 && n <= len(s); n++ {
		c := s[n-1]
		if !isDigit(c) {
			return nil, 0
		}
		v = v*10 + int(c-'0')
		var d *aiDef
		switch n {
		case 2:
			d = t.two[v]
		case 3:
			d = t.three[v]
		case 4:
			d = t.four[v]
		}
		if d != nil {
			return d, n
		}
	}
	return nil, 0
}

// exact finds the AI that is exactly ai.
func (t *table) exact(ai string) *aiDef {
	if len(ai) < 2 || len(ai) > 4 || !allDigits(ai) {
		return nil
	}
	d, n := t.lookup(ai)
	if n != len(ai) {
		return nil
	}
	return d
}

// Known reports whether ai is an AI of the Barcode Syntax Dictionary.
func Known(ai string) bool { return dict.exact(ai) != nil }

// Title returns the dictionary's data title of ai ("GTIN", "BATCH/LOT"), or
// "" for an unknown AI.
func Title(ai string) string {
	if d := dict.exact(ai); d != nil {
		return d.title
	}
	return ""
}

// IsKey reports whether ai carries a GS1 identification key (GTIN, SSCC,
// GLN, GRAI, GIAI, GSRN, GDTI, GINC, GSIN, CPID, GMN …), as opposed to a
// data attribute.
func IsKey(ai string) bool {
	d := dict.exact(ai)
	return d != nil && d.key
}

// AIs returns every AI of the dictionary, in dictionary order.
func AIs() []string {
	out := make([]string, len(dict.order))
	for i, d := range dict.order {
		out[i] = d.ai
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
