package configs

import (
	"fmt"
	"maps"
	"net"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/serials"
)

// Document classifies a read as a document rather than a product: a
// purchase order, a pick list, a shipment, a location, an operator's
// badge, a parent, or a control code (close, cancel, new_serial).
type Document struct {
	// Kind is order, pick, shipment, location, operator, parent, close,
	// cancel or new_serial.
	Kind string `yaml:"kind"`
	// Pattern is an RE2 expression the whole read must match; a named
	// group "value" is what it names (else the whole read).
	Pattern string `yaml:"pattern"`
	// Key is the context key it sets; default the kind.
	Key string `yaml:"key"`
}

// ModePolicy is a policy (warn or reject) for every mode, or per mode:
// "warn", or {receive: reject, count: warn} (modes left out: warn).
type ModePolicy map[string]string

// badShape marks a policy written as neither a word nor a mapping of
// words (a list, say). yaml.v3 would report such a value by its line
// alone, and the schema check does not look into maps, so UnmarshalYAML
// keeps the mistake in the map and Validate reports it by its path.
const badShape = "\x00shape"

// UnmarshalYAML takes a single policy or a map of mode to policy. An
// explicit "" is not given, like any other key's.
func (m *ModePolicy) UnmarshalYAML(unmarshal func(any) error) error {
	var one string
	if err := unmarshal(&one); err == nil {
		*m = nil
		if one != "" {
			*m = ModePolicy{"*": one}
		}
		return nil
	}
	var per map[string]string
	if err := unmarshal(&per); err != nil {
		*m = ModePolicy{badShape: ""}
		return nil
	}
	*m = per
	return nil
}

// MarshalYAML writes a policy for every mode as that word, and no policy
// as its default, warn: spelling the default out, or leaving it out, is
// the same config (and the same Hash).
func (m ModePolicy) MarshalYAML() (any, error) {
	switch {
	case len(m) == 0:
		return "warn", nil
	case len(m) == 1 && m["*"] != "":
		return m["*"], nil
	}
	return map[string]string(m), nil
}

// For returns the policy of mode.
func (m ModePolicy) For(mode string) string {
	if p, ok := m[mode]; ok {
		return p
	}
	if p, ok := m["*"]; ok {
		return p
	}
	return "warn"
}

// Orders sets what a scan that does not fit the order in context gets.
type Orders struct {
	// OverScan is for a unit of a line that is already met.
	OverScan ModePolicy `yaml:"over_scan"`
	// Unexpected is for a product the order does not list.
	Unexpected ModePolicy `yaml:"unexpected"`
}

// Aggregation configures packing and building (modes pack, build,
// unpack).
type Aggregation struct {
	// ChildCount closes an aggregation when it has this many children
	// (0: closed by the parent again, a close code or a command).
	ChildCount int `yaml:"child_count"`
	// MaxChildren caps one aggregation.
	MaxChildren int `yaml:"max_children"`
	// ChildProducts, when given, are the only products (GTIN-14 or SKU)
	// a child may be.
	ChildProducts []string `yaml:"child_products"`
}

// EPCIS renders the station's facts as GS1 EPCIS 2.0 events too.
type EPCIS struct {
	Enabled bool `yaml:"enabled"`
	// EPCForm is how units are named: dl (GS1 Digital Link URIs, the
	// EPCIS 2.0 default) or urn (urn:epc:id:sgtin:..., which needs
	// company_prefix_length).
	EPCForm             string `yaml:"epc_form"`
	CompanyPrefixLength int    `yaml:"company_prefix_length"`
	// ReadPoint and BizLocation are SGLNs (urn:epc:id:sgln:...); a
	// station's own override the gateway's.
	ReadPoint   string `yaml:"read_point"`
	BizLocation string `yaml:"biz_location"`
}

// SerialScheme is a way the gateway makes serial numbers.
type SerialScheme struct {
	// Name is the scheme's id, as commands and events name it.
	Name string `yaml:"name"`
	// Template is fixed text and placeholders: {site} {gateway}
	// {station} {yy} {yyyy} {mm} {dd} {ddd} {gtin} {lot} {expiry}
	// {seq:N} {check:ALG}.
	Template string `yaml:"template"`
	// Start is the first counter value of a free scheme (default 1).
	Start uint64 `yaml:"start"`
	// Granted makes the scheme issue only from blocks the central
	// system grants (command grant_serials): the fleet-wide counter.
	Granted bool `yaml:"granted"`
	// LowWater warns when fewer numbers than this remain.
	LowWater uint64 `yaml:"low_water"`
	// MaxLength caps a serial (default 20, AI 21's limit).
	MaxLength int `yaml:"max_length"`
}

// Printer is a label printer output.
type Printer struct {
	ID string `yaml:"id"`
	// Type is zpl (Zebra and compatible).
	Type string `yaml:"type"`
	// Addr is host:port (TCP, usually 9100); Device a USB printer
	// (/dev/usb/lp0). Exactly one.
	Addr   string `yaml:"addr"`
	Device string `yaml:"device"`
	// Retry is the pause before a job is tried again after the printer
	// failed or was not ready.
	Retry Duration `yaml:"retry"`
}

// Assign makes a station hand out serials: a new_serial document or,
// in mode assign, a product read asks for one.
type Assign struct {
	// Scheme names one of serials.
	Scheme string `yaml:"scheme"`
	// Printer names one of printers; "" assigns without printing.
	Printer string `yaml:"printer"`
	// Label is a ZPL template file; "" the built-in label.
	Label string `yaml:"label"`
	// Verify asks the operator to scan the printed label.
	Verify        bool     `yaml:"verify"`
	VerifyTimeout Duration `yaml:"verify_timeout"`
}

var (
	documentKinds = []string{"order", "pick", "shipment", "location", "operator", "parent", "close", "cancel", "new_serial"}
	signals       = []string{"good", "warn", "bad"}
	policies      = []string{"warn", "reject"}
	epcForms      = []string{"dl", "urn"}
	printerTypes  = []string{"zpl"}
	contextKey    = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	sgln          = regexp.MustCompile(`^urn:epc:id:sgln:([0-9]{6,12})\.([0-9]{0,6})\.[!%-?A-Z_a-z\x22]{1,20}$`)
	// controlKinds act on the context rather than set a key in it.
	controlKinds = []string{"close", "cancel", "new_serial"}
)

const (
	// maxChildrenLimit keeps an aggregation's close within one buffer
	// transaction with room to spare (Badger refuses one of about 12,000
	// keys with the buffer's memtable).
	maxChildrenLimit     = 5000
	defaultMaxChildren   = 1000
	defaultVerifyTimeout = 30 * time.Second
	defaultPrinterRetry  = 5 * time.Second
	defaultSerialMax     = 20
	defaultLowWater      = 100
)

func (c *Config) workflowDefaults() {
	setString(&c.EPCIS.EPCForm, "dl")
	for i := range c.Stations {
		st := &c.Stations[i]
		setString(&st.DocumentSignal, "good")
		setInt(&st.Aggregation.MaxChildren, defaultMaxChildren)
		setDuration(&st.Assign.VerifyTimeout, defaultVerifyTimeout)
	}
	for i := range c.Serials {
		s := &c.Serials[i]
		if s.Start == 0 {
			s.Start = 1
		}
		if s.LowWater == 0 {
			s.LowWater = defaultLowWater
		}
		setInt(&s.MaxLength, defaultSerialMax)
	}
	for i := range c.Printers {
		setString(&c.Printers[i].Type, "zpl")
		setDuration(&c.Printers[i].Retry, defaultPrinterRetry)
	}
}

func validateDocuments(v *validator, p string, docs []Document) {
	for i, d := range docs {
		dp := fmt.Sprintf("%s[%d]", p, i)
		if !slices.Contains(documentKinds, d.Kind) {
			v.add(dp+".kind", "must be one of %s", list(documentKinds))
		}
		if d.Pattern == "" {
			v.add(dp+".pattern", "required")
		} else if _, err := regexp.Compile(d.Pattern); err != nil {
			v.add(dp+".pattern", "not a regular expression: %v", err)
		} else if _, err := regexp.Compile(`^(?:` + d.Pattern + `)$`); err != nil {
			// station/workflow anchors the pattern so; one it cannot
			// compile would be dropped at start without a word.
			v.add(dp+".pattern", `cannot be matched as a whole: an unclosed \Q? end it with \E`)
		}
		switch {
		case d.Key == "":
		case slices.Contains(controlKinds, d.Kind):
			v.add(dp+".key", "a %s code sets no context key: leave key out", d.Kind)
		case !contextKey.MatchString(d.Key):
			v.add(dp+".key", "must match %s", contextKey)
		}
	}
}

// validatePolicy reports in key order: a map's own order is random, and
// the same config must give the same report.
func validatePolicy(v *validator, p string, m ModePolicy) {
	for _, mode := range slices.Sorted(maps.Keys(m)) {
		mp := p + "." + mode
		if mode == "*" {
			mp = p
		}
		switch {
		case mode == badShape:
			v.add(p, "want a policy (%s) or a mapping of mode to policy, like {receive: reject}", list(policies))
		case mode != "*" && !slices.Contains(stationModes, mode):
			v.add(mp, "not a mode: want one of %s", list(stationModes))
		case !slices.Contains(policies, m[mode]):
			v.add(mp, "must be one of %s", list(policies))
		}
	}
}

// validateProducts checks child_products. An entry of 14 digits is a
// GTIN-14; a GTIN-8, -12 or -13 is refused because scans name products
// by the GTIN-14 of AI (01), so it would never match; anything else is a
// SKU.
func validateProducts(v *validator, p string, products []string) {
	for i, prod := range products {
		pp := fmt.Sprintf("%s[%d]", p, i)
		digits := strings.Trim(prod, "0123456789") == ""
		switch n := len(prod); {
		case prod == "":
			v.add(pp, "must be a GTIN-14 or a SKU, not empty")
		case digits && n == 14 && !checkdigit.VerifyGS1Mod10(prod):
			v.add(pp, "a GTIN-14 with a wrong check digit")
		case digits && (n == 8 || n == 12 || n == 13) && checkdigit.VerifyGS1Mod10(prod):
			v.add(pp, "a GTIN-%d: write it as the GTIN-14 scans carry, %q", n, strings.Repeat("0", 14-n)+prod)
		}
	}
}

func (e *EPCIS) validate(v *validator, p string, gateway bool) {
	if gateway {
		if !slices.Contains(epcForms, e.EPCForm) {
			v.add(p+".epc_form", "must be one of %s", list(epcForms))
		}
		if e.EPCForm == "urn" && (e.CompanyPrefixLength < 6 || e.CompanyPrefixLength > 12) {
			v.add(p+".company_prefix_length", "must be 6 to 12 with epc_form urn")
		}
	} else {
		if e.Enabled || e.EPCForm != "" || e.CompanyPrefixLength != 0 {
			v.add(p, "a station sets only read_point and biz_location; enabled, epc_form and company_prefix_length are the gateway's (epcis)")
		}
	}
	for _, f := range []struct{ name, val string }{{"read_point", e.ReadPoint}, {"biz_location", e.BizLocation}} {
		if f.val != "" && !isSGLN(f.val) {
			v.add(p+"."+f.name, "must be an SGLN: urn:epc:id:sgln:<company prefix>.<location ref>.<extension>")
		}
	}
}

// validateWorkflow checks the workflow sections: the gateway's documents,
// epcis, serials and printers, and what each station names of them.
func (c *Config) validateWorkflow(v *validator) {
	validateDocuments(v, "documents", c.Documents)
	c.EPCIS.validate(v, "epcis", true)
	schemes := map[string]*serials.Template{} // nil: a scheme whose template is reported
	for i, s := range c.Serials {
		p := fmt.Sprintf("serials[%d]", i)
		v.id(p+".name", s.Name)
		if _, dup := schemes[s.Name]; dup && s.Name != "" {
			v.add(p+".name", "duplicate scheme %q", s.Name)
		}
		schemes[s.Name] = nil
		if s.Template == "" {
			v.add(p+".template", "required")
		} else if t, err := s.Parse(); err != nil {
			v.add(p+".template", "%v", err)
		} else {
			schemes[s.Name] = t
		}
		if s.MaxLength < 1 || s.MaxLength > 64 {
			v.add(p+".max_length", "must be 1 to 64")
		}
	}
	printers := map[string]bool{}
	for i, pr := range c.Printers {
		p := fmt.Sprintf("printers[%d]", i)
		v.id(p+".id", pr.ID)
		if printers[pr.ID] && pr.ID != "" {
			v.add(p+".id", "duplicate printer %q", pr.ID)
		}
		printers[pr.ID] = true
		if !slices.Contains(printerTypes, pr.Type) {
			v.add(p+".type", "must be one of %s", list(printerTypes))
		}
		switch {
		case (pr.Addr == "") == (pr.Device == ""):
			v.add(p, "exactly one of addr (host:port) and device (/dev/usb/lp0) is required")
		case pr.Addr != "" && !validHostPort(pr.Addr):
			v.add(p+".addr", "must be host:port, like 192.168.1.50:9100")
		case pr.Device != "" && !validDevice(pr.Device):
			v.add(p+".device", "must be an absolute path under /dev, like /dev/usb/lp0")
		}
		if pr.Retry <= 0 {
			v.add(p+".retry", "must be positive")
		}
	}
	for i := range c.Stations {
		st := &c.Stations[i]
		p := fmt.Sprintf("stations[%d]", i)
		validateDocuments(v, p+".documents", st.Documents)
		if st.ContextIdle < 0 {
			v.add(p+".context_idle", "must not be negative")
		}
		if !slices.Contains(signals, st.DocumentSignal) {
			v.add(p+".document_signal", "must be one of %s", list(signals))
		}
		validatePolicy(v, p+".orders.over_scan", st.Orders.OverScan)
		validatePolicy(v, p+".orders.unexpected", st.Orders.Unexpected)
		a := st.Aggregation
		if a.MaxChildren < 1 || a.MaxChildren > maxChildrenLimit {
			v.add(p+".aggregation.max_children", "must be 1 to %d (a close writes one index entry a child, in one transaction)", maxChildrenLimit)
		}
		if a.ChildCount < 0 || a.ChildCount > a.MaxChildren {
			v.add(p+".aggregation.child_count", "must be 0 to max_children (%d)", a.MaxChildren)
		}
		validateProducts(v, p+".aggregation.child_products", a.ChildProducts)
		st.EPCIS.validate(v, p+".epcis", false)
		// Every EPCIS event names its read point: without one the
		// station's facts would be stored but never rendered.
		if c.EPCIS.Enabled && st.EPCIS.ReadPoint == "" && c.EPCIS.ReadPoint == "" {
			v.add(p+".epcis.read_point", "required with epcis.enabled (or give epcis.read_point for every station)")
		}
		as := st.Assign
		switch {
		case as.Scheme == "" && (as.Printer != "" || as.Label != "" || as.Verify):
			v.add(p+".assign.scheme", "required when assign sets printer, label or verify")
		case as.Scheme != "":
			if t, ok := schemes[as.Scheme]; !ok {
				v.add(p+".assign.scheme", "no serial scheme %q (serials[].name)", as.Scheme)
			} else if err := c.checkSerialsAt(st, t); err != nil {
				v.add(p+".assign.scheme", "scheme %s cannot make serials at this station: %v", as.Scheme, err)
			}
		}
		if as.Printer != "" && !printers[as.Printer] {
			v.add(p+".assign.printer", "no printer %q (printers[].id)", as.Printer)
		}
		if as.Label != "" && as.Printer == "" {
			v.add(p+".assign.label", "a label needs a printer")
		}
		if as.Verify && as.Printer == "" {
			v.add(p+".assign.verify", "needs a printer: the operator scans the printed label")
		}
		if as.VerifyTimeout <= 0 {
			v.add(p+".assign.verify_timeout", "must be positive")
		}
		if st.Mode == "assign" && as.Scheme == "" {
			v.add(p+".mode", "mode assign needs assign.scheme")
		}
	}
}

// isSGLN reports whether s is an SGLN EPC URI whose company prefix and
// location reference make the 12 digits of a GLN without its check digit
// (GS1 Tag Data Standard, SGLN EPC URI).
func isSGLN(s string) bool {
	m := sgln.FindStringSubmatch(s)
	return m != nil && len(m[1])+len(m[2]) == 12
}

func validDevice(s string) bool {
	return path.IsAbs(s) && strings.HasPrefix(path.Clean(s), "/dev/") && !strings.ContainsRune(s, 0)
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	return err == nil && host != "" && validPort(port)
}

// checkSerialsAt renders t's longest serial with this gateway's and
// station's ids: an id that makes every serial too long is a config
// error, not a refusal at the first scan. A nil t was reported already.
func (c *Config) checkSerialsAt(st *Station, t *serials.Template) error {
	if t == nil {
		return nil
	}
	v := serials.Values{Site: c.Gateway.Site, Gateway: c.Gateway.ID, Station: st.ID, Time: time.Now(), Seq: t.MaxSeq()}
	gtin, lot, expiry := t.Needs()
	if gtin {
		v.GTIN = "09506000134352"
	}
	if lot {
		v.Lot = "L"
	}
	if expiry {
		v.Expiry = "271231"
	}
	_, err := t.Render(v)
	return err
}

// Parse parses the scheme's template as the gateway uses it: at most
// max_length characters (an out-of-range max_length, reported on its
// own, counts as the default).
func (s SerialScheme) Parse() (*serials.Template, error) {
	max := s.MaxLength
	if max < 1 || max > 64 {
		max = defaultSerialMax
	}
	return serials.ParseOptions{MaxLen: max}.Parse(s.Template)
}
