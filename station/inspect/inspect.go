// Package inspect explains a scanned barcode the way `scangw inspect`
// prints it: which scheme the data follows (GS1 element string, GS1
// Digital Link, HIBC, or a plain serial), whether it is well formed in that
// scheme, every problem with its position, and the fields it carries.
//
// One input line is one scan. A scanner's group separator (FNC1 in GS1
// symbols) cannot be typed, so a line may write it as "<GS>" or as the
// four characters `\x1d`; an AIM symbology identifier ("]d2") in front is
// honoured like the station honours it.
//
// The scheme is decided as the station would:
//
//   - an http(s) URI is a GS1 Digital Link ("gs1-dl") if its path ends in
//     a GS1 key, otherwise plain text;
//   - data starting with "+" and a letter, "$" or digit is HIBC LIC
//     ("hibc"), unless the symbology says GS1;
//   - data is GS1 ("gs1") when its symbology identifier says so (GS1-128,
//     GS1 DataMatrix, GS1 QR, DataBar, DotCode, EAN/UPC, ITF-14), when it is
//     in the bracketed form "(01)…", or when it contains a GS;
//   - without such a hint, 8, 12, 13 or 14 digits with a valid GS1 check
//     digit are a GTIN (keyboard-wedge scanners usually send EAN/UPC codes
//     without a symbology identifier), and other data is GS1 only if it
//     starts with an identification key AI such as (01) or (00) and reads as
//     AIs throughout: "10ABC" is a plain serial, not a lot without a GTIN;
//   - everything else is "plain": valid if it is printable text.
//
// # Serial schemes
//
// An Inspector may know the gateway's serial schemes (`scangw inspect
// --config FILE`). The serial a code carries (AI 21, the HIBC serial, or
// the whole of a plain code) is then checked against each: one that fits
// a scheme is reported with the scheme and its counter value, one that
// has a scheme's shape but the wrong check character is an error
// (bad_serial_check), and one that fits none is just a serial, since
// suppliers' serials are no concern of the schemes. The ids in a
// template are matched by their shape, so a serial another gateway of
// the fleet made checks too; a GTIN, lot or expiry the same code carries
// must be the one in the serial.
//
// "valid" is about form only (structure, check characters, dates, GS1
// pairing rules); whether a code is expired, recalled or expected is the
// rule engine's verdict, not this package's.
package inspect

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/gs1"
	"github.com/scangw/scangw/station/hibc"
	"github.com/scangw/scangw/station/serials"
)

// Schemes a scan can follow.
const (
	SchemeGS1         = "gs1"
	SchemeDigitalLink = "gs1-dl"
	SchemeHIBC        = "hibc"
	SchemePlain       = "plain"
)

// CodeSerialCheck is the error of a serial that has a configured
// scheme's shape but the wrong check character.
const CodeSerialCheck = "bad_serial_check"

// Error is one problem, as printed.
type Error struct {
	Code    string `json:"code"`
	AI      string `json:"ai,omitempty"`
	Pos     int    `json:"pos"`
	Message string `json:"message"`
}

// Element is one GS1 AI with its data title.
type Element struct {
	AI    string `json:"ai"`
	Title string `json:"title"`
	Value string `json:"value"`
}

// Result is the report on one scan. Field names are the JSON contract of
// `scangw inspect`; add fields, never rename them.
type Result struct {
	Input     string            `json:"input"`
	Valid     bool              `json:"valid"`
	Errors    []Error           `json:"errors"`
	Symbology string            `json:"symbology"`
	Scheme    string            `json:"scheme"`
	AIs       map[string]string `json:"ais"`
	Elements  []Element         `json:"elements,omitempty"`
	Bracketed string            `json:"bracketed,omitempty"`

	// Named fields, from GS1 AIs or HIBC data.
	GTIN           string `json:"gtin,omitempty"`
	ContentGTIN    string `json:"content_gtin,omitempty"`
	SSCC           string `json:"sscc,omitempty"`
	GLN            string `json:"gln,omitempty"`
	Serial         string `json:"serial,omitempty"`
	Lot            string `json:"lot,omitempty"`
	Expiry         string `json:"expiry,omitempty"`
	BestBefore     string `json:"best_before,omitempty"`
	SellBy         string `json:"sell_by,omitempty"`
	ProductionDate string `json:"production_date,omitempty"`
	PackagingDate  string `json:"packaging_date,omitempty"`
	Count          string `json:"count,omitempty"`
	CPV            string `json:"cpv,omitempty"`
	GIAI           string `json:"giai,omitempty"`
	GRAI           string `json:"grai,omitempty"`
	GSRN           string `json:"gsrn,omitempty"`
	ITIP           string `json:"itip,omitempty"`
	GDTI           string `json:"gdti,omitempty"`
	GMN            string `json:"gmn,omitempty"`
	CPID           string `json:"cpid,omitempty"`

	// HIBC only.
	LIC           string `json:"lic,omitempty"`
	PCN           string `json:"pcn,omitempty"`
	UnitOfMeasure *int   `json:"unit_of_measure,omitempty"`
	Quantity      *int   `json:"quantity,omitempty"`
	Link          string `json:"link,omitempty"`

	// With serial schemes (Inspector.Schemes): the scheme the serial is
	// from and its counter value. The counter is missing when the serial
	// fits the scheme in ways that disagree on it (AmbiguousError).
	SerialScheme  string  `json:"serial_scheme,omitempty"`
	SerialCounter *uint64 `json:"serial_counter,omitempty"`

	// With a rule set (Inspector.Judge): the verdict a station would give.
	Verdict      string   `json:"verdict,omitempty"`
	Reasons      []Reason `json:"reasons,omitempty"`
	RulesVersion string   `json:"rules_version,omitempty"`
}

// Reason explains a verdict (station.Reason).
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Judgement is what a rule engine says of a scan.
type Judgement struct {
	Verdict      string
	Reasons      []Reason
	RulesVersion string
}

// Inspector inspects scans. The zero value is ready to use.
type Inspector struct {
	// Now gives the reference time for two-digit years (GS1 GenSpecs
	// 7.12); nil means time.Now.
	Now func() time.Time
	// Judge, when set, adds the verdict of a rule set to each result
	// (`scangw inspect --rules FILE`). It gets the scan as a scanner would
	// deliver it: symbology split off, GS as 0x1D.
	Judge func(symbology string, data []byte) Judgement
	// Schemes are the serial schemes a serial is checked against, in
	// order: the first one it fits names it.
	Schemes []Scheme
}

// Scheme is a serial scheme as the config names it.
type Scheme struct {
	Name     string
	Template *serials.Template
}

// Inspect inspects one line with the zero Inspector.
func Inspect(line string) Result { return Inspector{}.Inspect(line) }

// Run inspects each argument, or each line of r when there are none, and
// writes one JSON object per line to w. It fails only on I/O errors: an
// invalid code is a report, not an error.
func Run(r io.Reader, args []string, w io.Writer) error { return Inspector{}.Run(r, args, w) }

// Run is the package-level Run with this Inspector's clock.
func (in Inspector) Run(r io.Reader, args []string, w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "<", ">" and "&" are common in URIs and serials
	if len(args) > 0 {
		for _, a := range args {
			if err := enc.Encode(in.Inspect(a)); err != nil {
				return fmt.Errorf("inspect: write: %w", err)
			}
		}
		return nil
	}
	if r == nil {
		return errors.New("inspect: no input")
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20) // a 2D symbol holds at most a few kB
	for sc.Scan() {
		if err := enc.Encode(in.Inspect(strings.TrimSuffix(sc.Text(), "\r"))); err != nil {
			return fmt.Errorf("inspect: write: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("inspect: read: %w", err)
	}
	return nil
}

func (in Inspector) now() func() time.Time {
	if in.Now != nil {
		return in.Now
	}
	return time.Now
}

// Inspect reports on one line.
func (in Inspector) Inspect(line string) Result {
	res := Result{Input: line, Errors: []Error{}, AIs: map[string]string{}}
	data, where := normalize(line)
	sym, body := gs1.SplitAIM(data)
	res.Symbology = sym
	pd := Classify(sym, body, in.now())
	switch {
	case body == "":
		res.Scheme = SchemePlain
		res.Errors = append(res.Errors, Error{Code: gs1.CodeEmpty, Pos: len(line), Message: "no data"})
	case pd.Scheme == SchemePlain:
		in.plain(&res, data, where)
	case pd.Scheme == SchemeHIBC:
		res.Scheme = SchemeHIBC
		fromHIBC(&res, pd.HIBC, pd.Err, where)
	default:
		res.Scheme = pd.Scheme
		err := pd.Err
		if pd.BareGTIN {
			err = shift(err, -len(bareGTINPrefix)) // positions in the input, not in "]E0"+input
		}
		in.fromGS1(&res, pd.GS1, err, where)
	}
	if len(in.Schemes) > 0 {
		in.serial(&res, data, sym, body, pd, where)
	}
	res.Valid = len(res.Errors) == 0
	if in.Judge != nil {
		j := in.Judge(sym, []byte(body))
		res.Verdict, res.Reasons, res.RulesVersion = j.Verdict, j.Reasons, j.RulesVersion
	}
	return res
}

// Parsed is a scan read according to its scheme, as Classify decided.
type Parsed struct {
	Scheme string // SchemeGS1, SchemeDigitalLink, SchemeHIBC or SchemePlain
	GS1    *gs1.Result
	HIBC   *hibc.Result
	// Err holds the parser's errors (gs1.Errors or hibc's).
	Err error
	// BareGTIN: an EAN/UPC without an identifier, parsed as "]E0"+body, so
	// error positions are 3 bytes past the scan's.
	BareGTIN bool
}

const bareGTINPrefix = "]E0"

// Classify decides what a scan is and parses it: a Digital Link URI, HIBC,
// GS1 announced by its symbology, its brackets or a GS, a bare GTIN (as
// keyboard-wedge scanners send EAN/UPC), data opening with a GS1 key, or
// else a plain serial. `scangw inspect` and the rule engine both read
// scans through it, so they never disagree. now places two-digit years
// (GenSpecs 7.12).
func Classify(sym, body string, now func() time.Time) Parsed {
	full := sym + body
	p := gs1.Parser{Now: now}
	switch {
	case body == "":
	case hasPrefixFold(body, "https://") || hasPrefixFold(body, "http://"):
		r, err := p.Parse(full)
		if !onlyCodes(err, gs1.CodeDLNoKey, gs1.CodeBadURI) { // else a URI, not a Digital Link
			return Parsed{Scheme: SchemeDigitalLink, GS1: r, Err: err}
		}
	case hibc.Looks(full) && !gs1.IsGS1Symbology(sym):
		r, err := hibc.Parse(full)
		return Parsed{Scheme: SchemeHIBC, HIBC: r, Err: err}
	case gs1.IsGS1Symbology(sym) || body[0] == '(' || strings.IndexByte(body, gs1.GS) >= 0:
		r, err := p.Parse(full)
		return Parsed{Scheme: SchemeGS1, GS1: r, Err: err}
	case sym == "" && isGTIN(body):
		r, err := p.Parse(bareGTINPrefix + body) // read like an EAN/UPC scan
		r.Symbology = ""
		return Parsed{Scheme: SchemeGS1, GS1: r, Err: err, BareGTIN: true}
	case sym == "":
		r, err := p.Parse(body)
		// Without a hint, only data that opens with an identification key
		// counts as GS1: "10ABC" or "9512" read as AIs by accident.
		if len(r.Elements) > 0 && gs1.IsKey(r.Elements[0].AI) && !hasCode(err, gs1.CodeUnknownAI) {
			return Parsed{Scheme: SchemeGS1, GS1: r, Err: err}
		}
	}
	return Parsed{Scheme: SchemePlain}
}

// isGTIN: 8, 12, 13 or 14 digits ending in a correct GS1 check digit.
func isGTIN(s string) bool {
	switch len(s) {
	case 8, 12, 13, 14:
		return checkdigit.VerifyGS1Mod10(s)
	}
	return false
}

// serial checks the code's serial against the schemes.
func (in Inspector) serial(res *Result, data, sym, body string, pd Parsed, where func(int) int) {
	var serial, ai string
	var pos int // where in data the serial starts, or, in GS1, its element
	var known serials.Values
	switch {
	case res.Scheme == SchemePlain:
		if len(res.Errors) > 0 {
			return // not text, so no serial of any scheme
		}
		serial, pos = body, len(sym)
	case res.Scheme == SchemeHIBC:
		serial, known.Lot = res.Serial, res.Lot
		// hibc does not say where its fields are; the serial is the last
		// data field, before the link and check characters.
		pos = max(strings.LastIndex(data, serial), 0)
	case pd.GS1 != nil:
		for _, e := range pd.GS1.Elements {
			if e.AI == "21" {
				serial, ai, pos = e.Value, e.AI, e.Pos
				break
			}
		}
		known = serials.Values{GTIN: res.GTIN, Lot: res.Lot, Expiry: res.AIs["17"]}
	}
	if serial == "" {
		return
	}
	var wrong []Error
	for _, sc := range in.Schemes {
		seq, err := sc.Template.Check(serial, known)
		var ce *serials.CheckError
		var ae *serials.AmbiguousError
		switch {
		case err == nil:
			res.SerialScheme, res.SerialCounter = sc.Name, &seq
			return
		case errors.As(err, &ae):
			res.SerialScheme = sc.Name
			return
		case errors.As(err, &ce):
			at := pos + ce.Offset
			if ai != "" {
				at = pos // a GS1 error points at its element, as gs1's do
			}
			wrong = append(wrong, Error{Code: CodeSerialCheck, AI: ai, Pos: where(at), Message: fmt.Sprintf(
				"serial %q has the shape of scheme %s (%s) but its check character %q is wrong: %s wants %q",
				serial, sc.Name, sc.Template, ce.Got, ce.Alg, ce.Want)})
		}
	}
	res.Errors = append(res.Errors, wrong...)
}

func (in Inspector) plain(res *Result, data string, where func(int) int) {
	res.Scheme = SchemePlain
	if !utf8.ValidString(data) {
		res.Errors = append(res.Errors, Error{Code: "not_utf8", Pos: 0, Message: "the scan is not valid UTF-8 text"})
		return
	}
	for i := 0; i < len(data); i++ {
		// GS, RS and EOT are data separators, as the station allows them.
		if c := data[i]; c < 0x20 && c != 0x1d && c != 0x1e && c != 0x04 || c == 0x7f {
			res.Errors = append(res.Errors, Error{Code: "non_printable", Pos: where(i),
				Message: fmt.Sprintf("control character 0x%02X", c)})
			return
		}
	}
}

func (in Inspector) fromGS1(res *Result, r *gs1.Result, err error, where func(int) int) {
	var es gs1.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			res.Errors = append(res.Errors, Error{Code: e.Code, AI: e.AI, Pos: where(e.Pos), Message: e.Msg})
		}
	} else if err != nil {
		res.Errors = append(res.Errors, Error{Code: "error", Message: err.Error()})
	}
	if r == nil {
		return
	}
	for _, e := range r.Elements {
		res.Elements = append(res.Elements, Element{AI: e.AI, Title: gs1.Title(e.AI), Value: e.Value})
		if _, dup := res.AIs[e.AI]; !dup {
			res.AIs[e.AI] = e.Value
		}
	}
	if len(r.Elements) > 0 {
		res.Bracketed = r.Bracketed()
	}
	str := func(ai string) string { return res.AIs[ai] }
	date := func(ai string) string {
		if t, ok := r.Date(ai); ok {
			return t.Format(time.DateOnly)
		}
		return ""
	}
	res.GTIN = str("01")
	res.ContentGTIN = str("02")
	res.SSCC = str("00")
	res.GLN = str("414")
	res.Serial = str("21")
	res.Lot = str("10")
	res.Expiry = date("17")
	res.BestBefore = date("15")
	res.SellBy = date("16")
	res.ProductionDate = date("11")
	res.PackagingDate = date("13")
	res.Count = str("30")
	if res.Count == "" {
		res.Count = str("37")
	}
	res.CPV = str("22")
	res.GIAI = str("8004")
	res.GRAI = str("8003")
	res.GSRN = str("8018")
	if res.GSRN == "" {
		res.GSRN = str("8017")
	}
	res.ITIP = str("8006")
	res.GDTI = str("253")
	res.GMN = str("8013")
	res.CPID = str("8010")
}

func fromHIBC(res *Result, r *hibc.Result, err error, where func(int) int) {
	var es hibc.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			res.Errors = append(res.Errors, Error{Code: e.Code, Pos: where(e.Pos), Message: e.Msg})
		}
	}
	if r == nil {
		return
	}
	if p := r.Primary; p != nil {
		res.LIC, res.PCN = p.LIC, p.PCN
		u := p.UoM
		res.UnitOfMeasure = &u
	}
	if r.Link != 0 {
		res.Link = string(r.Link)
	}
	if s := r.Secondary; s != nil {
		res.Lot, res.Serial = s.Lot, s.Serial
		if !s.Expiry.IsZero() {
			res.Expiry = s.Expiry.Format(time.DateOnly)
		}
		if !s.Manufactured.IsZero() {
			res.ProductionDate = s.Manufactured.Format(time.DateOnly)
		}
		if s.HasQuantity {
			q := s.Quantity
			res.Quantity = &q
		}
	}
}

// normalize turns the typed forms of GS into the byte and returns a
// function mapping an offset in the result back to the line.
func normalize(line string) (string, func(int) int) {
	if !strings.Contains(line, "<GS>") && !strings.Contains(line, "<gs>") && !strings.Contains(line, `\x1d`) && !strings.Contains(line, `\x1D`) {
		return line, func(i int) int { return i }
	}
	var b strings.Builder
	var from []int // from[i]: offset in line of output byte i
	for i := 0; i < len(line); {
		switch {
		case strings.HasPrefix(line[i:], "<GS>") || strings.HasPrefix(line[i:], "<gs>"):
			b.WriteByte(gs1.GS)
			from = append(from, i)
			i += 4
		case strings.HasPrefix(line[i:], `\x1d`) || strings.HasPrefix(line[i:], `\x1D`):
			b.WriteByte(gs1.GS)
			from = append(from, i)
			i += 4
		default:
			b.WriteByte(line[i])
			from = append(from, i)
			i++
		}
	}
	from = append(from, len(line))
	return b.String(), func(i int) int {
		if i < 0 {
			return 0
		}
		if i >= len(from) {
			return len(line)
		}
		return from[i]
	}
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasCode(err error, code string) bool {
	var es gs1.Errors
	return errors.As(err, &es) && es.Has(code)
}

// onlyCodes reports whether err has errors and all of them have one of the
// codes.
func onlyCodes(err error, codes ...string) bool {
	var es gs1.Errors
	if !errors.As(err, &es) || len(es) == 0 {
		return false
	}
	for _, e := range es {
		found := false
		for _, c := range codes {
			if e.Code == c {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// shift moves the positions of gs1 errors by d (for the "]E0" the
// inspector put in front), never below 0.
func shift(err error, d int) error {
	var es gs1.Errors
	if !errors.As(err, &es) {
		return err
	}
	for _, e := range es {
		e.Pos = max(e.Pos+d, 0)
	}
	return es
}
