package epcis

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/gs1"
)

// EPC forms (Config.EPCForm).
const (
	// EPCFormDL writes identifiers as GS1 Digital Link URIs on
	// https://id.gs1.org, the form EPCIS 2.0 recommends.
	EPCFormDL = "dl"
	// EPCFormURN writes them as EPC URIs (urn:epc:id:sgtin:…), which
	// EPCIS 1.x partners expect; it needs Config.CompanyPrefixLength.
	EPCFormURN = "urn"
)

// Config is how a station's facts become EPCIS events. The zero value is
// not valid: ReadPoint is required.
type Config struct {
	// ReadPoint is where the scans happen (the dock door), and BizLocation
	// the site the goods are at afterwards (optional): each an SGLN as an
	// EPC URI ("urn:epc:id:sgln:0614141.07346.1234") or as a GS1 Digital
	// Link URI with a GLN ("https://id.gs1.org/414/0614141073467/254/1234").
	// They are written as given.
	ReadPoint   string
	BizLocation string
	// EPCForm is EPCFormDL ("" means it) or EPCFormURN.
	EPCForm string
	// CompanyPrefixLength says how long the GS1 Company Prefix is in a
	// key, which the EPC URI form spells out and the key itself does not:
	// keys are the leading digits of the GTIN after its indicator digit
	// (of the SSCC after its extension digit), the longest that matches
	// wins, "" matches every key; values are 6 to 12. This is GS1's GCP
	// length table in small: {"": 7} when every product is your own,
	// {"0614141": 7, "95": 9} when suppliers differ. Only EPCFormURN reads
	// it; a key no entry matches is an error when its event is rendered.
	CompanyPrefixLength map[string]int
	// BizSteps and Dispositions replace the defaults of the mode table
	// (see the package comment) per mode: a CBV 2.0 term ("stock_taking")
	// or a URI of your own vocabulary; "" leaves the field out.
	BizSteps     map[string]string
	Dispositions map[string]string
	// BizTransactions maps context keys to CBV business transaction types
	// (or URIs), over the defaults order → po and pick → po; "" drops a
	// key.
	BizTransactions map[string]string
	// TransactionPrefix is put in front of a context value that is not a
	// URI already, to make the bizTransaction URI. The default is the CBV
	// private form "urn:epcglobal:cbv:bt:<GLN>:" with the GLN of
	// BizLocation, else of ReadPoint.
	TransactionPrefix string
	// Location is the time zone of eventTimeZoneOffset; nil uses the zone
	// of the event's time.
	Location *time.Location
}

// Validate reports every field of c that events cannot be made with.
func (c Config) Validate() error {
	_, err := c.plan()
	return err
}

// plan is a Config checked and resolved for rendering.
type plan struct {
	c                      Config
	readPoint, bizLocation location
	transactions           map[string]string // context key → type
	txPrefix               string
}

var defaultTransactions = map[string]string{"order": "po", "pick": "po"}

func (c Config) plan() (*plan, error) {
	p := &plan{c: c}
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, a...)))
	}
	var err error
	if c.ReadPoint == "" {
		bad("read_point", "required: the SGLN of the place the station scans at")
	} else if p.readPoint, err = parseLocation(c.ReadPoint); err != nil {
		bad("read_point", "%v", err)
	}
	if c.BizLocation != "" {
		if p.bizLocation, err = parseLocation(c.BizLocation); err != nil {
			bad("biz_location", "%v", err)
		}
	}
	switch c.EPCForm {
	case "", EPCFormDL:
	case EPCFormURN:
		if len(c.CompanyPrefixLength) == 0 {
			bad("company_prefix_length", "required with epc_form %q: the EPC URI form spells out the GS1 Company Prefix", EPCFormURN)
		}
	default:
		bad("epc_form", "%q is neither %q nor %q", c.EPCForm, EPCFormDL, EPCFormURN)
	}
	for _, k := range slices.Sorted(maps.Keys(c.CompanyPrefixLength)) {
		if !allDigits(k) || len(k) > 12 {
			bad("company_prefix_length["+strconv.Quote(k)+"]", "a key is up to 12 digits, how keys start after their indicator digit")
		}
		if n := c.CompanyPrefixLength[k]; n < 6 || n > 12 {
			bad("company_prefix_length["+strconv.Quote(k)+"]", "%d is not a GS1 Company Prefix length (6 to 12)", n)
		}
	}
	checkOverrides(c.BizSteps, "biz_steps", bizStepTerms, true, &errs)
	checkOverrides(c.Dispositions, "dispositions", dispositionTerms, true, &errs)
	checkOverrides(c.BizTransactions, "biz_transactions", transactionTypes, false, &errs)
	p.transactions = maps.Clone(defaultTransactions)
	maps.Copy(p.transactions, c.BizTransactions)
	switch {
	case c.TransactionPrefix != "":
		if u, err := url.Parse(c.TransactionPrefix + "x"); err != nil || u.Scheme == "" {
			bad("transaction_prefix", "%q does not start an absolute URI", c.TransactionPrefix)
		}
		p.txPrefix = c.TransactionPrefix
	case p.bizLocation.gln != "":
		p.txPrefix = "urn:epcglobal:cbv:bt:" + p.bizLocation.gln + ":"
	default:
		p.txPrefix = "urn:epcglobal:cbv:bt:" + p.readPoint.gln + ":"
	}
	return p, errors.Join(errs...)
}

// checkOverrides checks each value against the CBV terms, or as a URI
// of the user's own vocabulary; keys of a byMode map must be modes of the
// mode table.
func checkOverrides(overrides map[string]string, field string, terms []string, byMode bool, errs *[]error) {
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		name := field + "[" + strconv.Quote(k) + "]"
		switch {
		case k == "":
			*errs = append(*errs, fmt.Errorf("%s: empty key", name))
		case byMode && !knownMode(k):
			*errs = append(*errs, fmt.Errorf("%s: no mode %q", name, k))
		default:
			if err := checkVocab(overrides[k], terms); err != nil {
				*errs = append(*errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
}

func knownMode(m string) bool {
	if _, ok := objectSteps[m]; ok {
		return true
	}
	for k := range aggregationSteps {
		if k.mode == m {
			return true
		}
	}
	return false
}

// checkVocab accepts a CBV term, a URI outside the CBV's namespaces (the
// schema reserves those for the bare terms), or "".
func checkVocab(v string, terms []string) error {
	if v == "" || slices.Contains(terms, v) {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("%q is neither a CBV 2.0 term nor a URI", v)
	}
	if strings.HasPrefix(v, "urn:epcglobal:cbv") || strings.HasPrefix(v, "https://ns.gs1.org/cbv/") || strings.HasPrefix(v, "http://ns.gs1.org/cbv/") {
		return fmt.Errorf("%q: write CBV values as their bare term", v)
	}
	return nil
}

// location is a read point or business location.
type location struct {
	uri string // as configured
	dl  string // its canonical Digital Link, for the event hash
	gln string
}

const sglnURN = "urn:epc:id:sgln:"

// parseLocation reads an SGLN as an EPC URI or a GS1 Digital Link URI.
func parseLocation(s string) (location, error) {
	var gln, ext string
	switch {
	case strings.HasPrefix(s, sglnURN):
		parts := strings.Split(s[len(sglnURN):], ".")
		if len(parts) != 3 {
			return location{}, fmt.Errorf("%q: an SGLN URI is %s<company prefix>.<location reference>.<extension>", s, sglnURN)
		}
		cp, ref := parts[0], parts[1]
		if len(cp) < 6 || len(cp) > 12 || !allDigits(cp) || !allDigits(ref) || len(cp)+len(ref) != 12 {
			return location{}, fmt.Errorf("%q: company prefix (6 to 12 digits) and location reference must make 12 digits", s)
		}
		cd, _ := checkdigit.GS1Mod10(cp + ref) // 12 digits: no error
		gln = cp + ref + string(cd)
		var ok bool
		if ext, ok = unescapeURN(parts[2]); !ok || ext == "" {
			return location{}, fmt.Errorf("%q: bad extension", s)
		}
		if ext == "0" {
			ext = "" // TDS: extension 0 is the GLN itself
		}
	case strings.HasPrefix(s, "https://"), strings.HasPrefix(s, "http://"):
		r, err := gs1.ParseDigitalLink(s)
		if err != nil {
			return location{}, fmt.Errorf("%q: %w", s, err)
		}
		var found bool
		for _, e := range r.Elements {
			switch e.AI {
			case "414":
				gln, found = e.Value, true
			case "254":
				ext = e.Value
			default:
				return location{}, fmt.Errorf("%q: (%s) does not belong in a location's URI, only (414) and (254)", s, e.AI)
			}
		}
		if !found {
			return location{}, fmt.Errorf("%q: no GLN (414)", s)
		}
	default:
		return location{}, fmt.Errorf("%q: want %s… or a GS1 Digital Link URI with a GLN (414)", s, sglnURN)
	}
	r := &gs1.Result{Elements: []gs1.Element{{AI: "414", Value: gln}}}
	if ext != "" {
		r.Elements = append(r.Elements, gs1.Element{AI: "254", Value: ext})
	}
	dl, err := checkedDL(r)
	if err != nil {
		return location{}, fmt.Errorf("%q: %w", s, err)
	}
	return location{uri: s, dl: dl, gln: gln}, nil
}

// checkedDL renders r on id.gs1.org and parses the result back, so that
// only well-formed GS1 keys (length, character set, check digit) reach an
// event.
func checkedDL(r *gs1.Result) (string, error) {
	dl, ok := r.DigitalLink(resolver)
	if !ok {
		return "", errors.New("not a GS1 key")
	}
	if _, err := gs1.ParseDigitalLink(dl); err != nil {
		return "", err
	}
	return dl, nil
}

const resolver = "https://id.gs1.org"

// urnEscaped are the characters of GS1's CSET 82 that an EPC URI writes
// percent-escaped (TDS 2.0, table "Characters permitted in EPC URI").
const urnEscaped = "\"%&/<>?"

func escapeURN(s string) string {
	if !strings.ContainsAny(s, urnEscaped) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(urnEscaped, s[i]) >= 0 {
			fmt.Fprintf(&b, "%%%02X", s[i])
		} else {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func unescapeURN(s string) (string, bool) {
	v, err := url.PathUnescape(s)
	return v, err == nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// The CBV 2.0 terms EPCIS-JSON-Schema.json accepts bare.
var (
	bizStepTerms = []string{
		"accepting", "arriving", "assembling", "collecting", "commissioning", "consigning",
		"creating_class_instance", "cycle_counting", "decommissioning", "departing", "destroying",
		"disassembling", "dispensing", "encoding", "entering_exiting", "holding", "inspecting",
		"installing", "killing", "loading", "other", "packing", "picking", "receiving", "removing",
		"repackaging", "repairing", "replacing", "reserving", "retail_selling", "shipping",
		"staging_outbound", "stock_taking", "stocking", "storing", "transporting", "unloading",
		"unpacking", "void_shipping", "sensor_reporting", "sampling",
	}
	dispositionTerms = []string{
		"active", "container_closed", "damaged", "destroyed", "dispensed", "disposed", "encoded",
		"expired", "in_progress", "in_transit", "inactive", "no_pedigree_match", "non_sellable_other",
		"partially_dispensed", "recalled", "reserved", "retail_sold", "returned", "sellable_accessible",
		"sellable_not_accessible", "stolen", "unknown", "available", "completeness_verified",
		"completeness_inferred", "conformant", "container_open", "mismatch_instance", "mismatch_class",
		"mismatch_quantity", "needs_replacement", "non_conformant", "unavailable",
	}
	transactionTypes = []string{
		"bol", "cert", "desadv", "inv", "pedigree", "po", "poc", "prodorder", "recadv", "rma",
		"testprd", "testres", "upevt",
	}
)
