package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/workflow"
)

// Schema is the rule-set schema version this package reads. A payload
// with another "schema" is refused (CodeBadSchema): fields are never
// reinterpreted silently.
const Schema = 1

// Scopes of a rule set: one per MQTT rules topic.
const (
	ScopeSite    = "site"    // <prefix>/<site>/rules
	ScopeGateway = "gateway" // <prefix>/<site>/<gateway>/rules
)

// Policies: what a finding does to the verdict.
const (
	Allow  = "allow"
	Warn   = "warn"
	Reject = "reject"
)

// wireSet is the payload as written. Its field names are the format; see
// the package documentation.
type wireSet struct {
	Schema         *int           `json:"schema"`
	Version        int64          `json:"version"`
	Issued         string         `json:"issued"`
	Scope          string         `json:"scope"`
	Site           string         `json:"site"`
	Gateway        string         `json:"gateway"`
	UnknownProduct string         `json:"unknown_product"`
	Products       []wireProduct  `json:"products"`
	Deny           denyList       `json:"deny"`
	Duplicates     wireDuplicates `json:"duplicates"`
	Expected       expectedList   `json:"expected"`
	Documents      documentList   `json:"documents"`
	Shipped        shippedList    `json:"shipped"`
	Returns        *wireReturns   `json:"returns"`
}

type wireProduct struct {
	GTIN     string        `json:"gtin"`
	SKU      string        `json:"sku"`
	Serial   *wireSerial   `json:"serial"`
	Require  []string      `json:"require"`
	Expiry   *wireExpiry   `json:"expiry"`
	Children *wireChildren `json:"children"`
}

type wireChildren struct {
	Products []string `json:"products"`
	Count    *int     `json:"count"`
}

type wireSerial struct {
	Pattern string `json:"pattern"`
	Min     int    `json:"min"`
	Max     int    `json:"max"`
	Charset string `json:"charset"`
	Check   string `json:"check"`
}

type wireExpiry struct {
	RejectExpired  bool `json:"reject_expired"`
	WarnWithinDays int  `json:"warn_within_days"`
}

type wireDeny struct {
	GTIN    string   `json:"gtin"`
	SKU     string   `json:"sku"`
	Serial  string   `json:"serial"`
	Serials hashList `json:"serials"`
	Lot     string   `json:"lot"`
	Lots    hashList `json:"lots"`
	Reason  string   `json:"reason"`
	Message string   `json:"message"`
}

type wireDuplicates struct {
	Receive              string `json:"receive"`
	Ship                 string `json:"ship"`
	Return               string `json:"return"`
	Transfer             string `json:"transfer"`
	Count                string `json:"count"`
	ShipRequiresReceived string `json:"ship_requires_received"`
}

type wireExpected struct {
	Order    string   `json:"order"`
	Policy   string   `json:"policy"`
	GTIN     string   `json:"gtin"`
	SKU      string   `json:"sku"`
	Serials  hashList `json:"serials"`
	Quantity *int     `json:"quantity"`
}

// header is what is read of a payload before the whole of it: enough to
// refuse a set that is of an unknown schema, for another gateway, or not
// newer, without building a million-entry deny list first.
type header struct {
	Schema  *int   `json:"schema"`
	Version int64  `json:"version"`
	Scope   string `json:"scope"`
	Site    string `json:"site"`
	Gateway string `json:"gateway"`
}

// Set is a checked, compiled rule set. It is immutable once built, so any
// number of goroutines may judge scans with it.
type Set struct {
	// Version is the set's version; each scope's versions only go up.
	Version int64
	// Issued is when the central system issued the set.
	Issued time.Time
	// Scope is ScopeSite or ScopeGateway.
	Scope string
	// Site and Gateway are the ids the set is for ("" when it does not say).
	Site, Gateway string

	unknownProduct string
	products       map[string]*product // by productKey
	deny           keySet              // values index denyReasons
	denyReasons    []station.Reason
	duplicates     map[string]string // station mode → policy
	shipReceived   string
	expected       map[string]*order
	documents      []workflow.Pattern
	children       map[string]workflow.Children // by productKey of the parent
	shipped        shippedIndex
	returned       string // policy for a unit last returned, in mode return
}

// Name is how scan events name the set: "site:42", "gateway:7".
func (s *Set) Name() string { return s.Scope + ":" + strconv.FormatInt(s.Version, 10) }

// Stats describes the size of a set, for logs and the status page.
type Stats struct {
	Products     int // product rules
	DenyKeys     int // distinct deny-list keys
	Orders       int // orders with expected units
	ExpectedKeys int // expected-unit keys over all orders
	DenyBytes    int // memory the deny list's index holds
	Documents    int // document patterns
	ShippedKeys  int // distinct shipped-list keys
	ShippedBytes int // memory the shipped lists' index holds
}

// Stats returns the set's sizes.
func (s *Set) Stats() Stats {
	st := Stats{Products: len(s.products), DenyKeys: s.deny.Len(), Orders: len(s.expected), DenyBytes: s.deny.bytes(),
		Documents: len(s.documents), ShippedKeys: s.shipped.keys.Len(), ShippedBytes: s.shipped.keys.bytes()}
	for _, o := range s.expected {
		st.ExpectedKeys += o.keys.Len()
	}
	return st
}

type product struct {
	serial  *serialRule
	require []string // "serial", "lot", "expiry"
	expiry  *wireExpiry
}

type serialRule struct {
	pattern  *regexp.Regexp // anchored at both ends
	min, max int            // characters; max 0: no limit
	ascii    [128]bool      // the charset's ASCII part
	wide     string         // the charset's other characters
	charset  bool           // a charset is set
	check    checkdigit.Algorithm
}

type order struct {
	policy string
	keys   keySet
	view   workflow.Order // what Engine.Order returns, built once
}

// productKey names a product in the maps: "g" + GTIN-14 or "k" + SKU.
func gtinKey(gtin14 string) string { return "g" + gtin14 }
func skuKey(sku string) string     { return "k" + sku }

// Check compiles a rule-set payload (the JSON inside the envelope) without
// any envelope, signature, version or target check: for `scangw rules
// check` and for Sign, so that a broken set is caught at the desk.
func Check(payload []byte) (*Set, error) {
	if _, err := readHeader(payload); err != nil {
		return nil, err
	}
	return compile(payload)
}

// readHeader reads and checks the header of a payload.
func readHeader(payload []byte) (header, error) {
	var h header
	if err := json.Unmarshal(payload, &h); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			if ute.Field == "schema" {
				return h, refuse(CodeBadSchema, "\"schema\" must be an integer", err)
			}
			return h, &Error{Code: CodeBadRule, Path: ute.Field, Msg: "want " + ute.Type.String() + ", have a JSON " + ute.Value, Err: err}
		}
		return h, refuse(CodeBadJSON, "payload: "+err.Error(), err)
	}
	switch {
	case h.Schema == nil:
		return h, refuse(CodeBadSchema, "the payload has no \"schema\"", nil)
	case *h.Schema != Schema:
		return h, refuse(CodeBadSchema, fmt.Sprintf("schema %d is not known (this gateway reads schema %d)", *h.Schema, Schema), nil)
	}
	return h, nil
}

// compile decodes a payload whose header was read (so it is valid JSON)
// and builds the Set, reporting every bad rule it finds.
func compile(payload []byte) (*Set, error) {
	c := checker{}
	// A typo must not turn a rule off silently.
	unknownFields(payload, payloadShape(), func(path string) { c.bad(path, "unknown field") })
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	var w wireSet
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, decodeError(err)
	}
	s := c.set(&w)
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return s, nil
}

func decodeError(err error) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return &Error{Code: CodeBadRule, Path: ute.Field, Msg: "want " + ute.Type.String() + ", have a JSON " + ute.Value, Err: err}
	}
	return refuse(CodeBadJSON, "payload: "+err.Error(), err)
}

// checker collects bad rules with their paths.
type checker struct{ errs Errors }

func (c *checker) bad(path, format string, args ...any) {
	if len(c.errs) < maxProblems {
		c.errs = append(c.errs, &Error{Code: CodeBadRule, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
}

func (c *checker) merge(es Errors) {
	for _, e := range es {
		if len(c.errs) < maxProblems {
			c.errs = append(c.errs, e)
		}
	}
}

func (c *checker) set(w *wireSet) *Set {
	s := &Set{
		Version:    w.Version,
		Scope:      w.Scope,
		Site:       w.Site,
		Gateway:    w.Gateway,
		products:   map[string]*product{},
		children:   map[string]workflow.Children{},
		duplicates: map[string]string{},
		expected:   map[string]*order{},
	}
	if w.Version < 1 {
		c.bad("version", "must be a positive integer")
	}
	if t, err := time.Parse(time.RFC3339, w.Issued); err != nil {
		c.bad("issued", "want an RFC 3339 time such as 2026-07-01T12:00:00Z")
	} else {
		s.Issued = t
	}
	switch w.Scope {
	case ScopeSite:
	case ScopeGateway:
		if w.Gateway == "" {
			// Without it a set signed for one gateway could be replayed on
			// another's topic.
			c.bad("gateway", "a gateway-scoped set must name its gateway")
		}
	default:
		c.bad("scope", "want %q or %q", ScopeSite, ScopeGateway)
	}
	c.id("site", w.Site)
	c.id("gateway", w.Gateway)
	s.unknownProduct = c.policy("unknown_product", w.UnknownProduct, Allow)

	for i := range w.Products {
		c.product(s, fmt.Sprintf("products[%d]", i), &w.Products[i])
	}
	c.merge(w.Deny.problems)
	if len(c.errs) == 0 {
		s.deny, s.denyReasons = newKeySet(w.Deny.hashes, w.Deny.vals), w.Deny.reasons
	}
	d := &w.Duplicates
	// Modes that move units only: not inPlace.
	for mode, p := range map[string]string{"receive": d.Receive, "ship": d.Ship, "return": d.Return, "transfer": d.Transfer, "count": d.Count} {
		if p := c.policy("duplicates."+mode, p, Allow); p != Allow {
			s.duplicates[mode] = p
		}
	}
	s.shipReceived = c.policy("duplicates.ship_requires_received", d.ShipRequiresReceived, Allow)
	c.merge(w.Expected.problems)
	if len(c.errs) == 0 {
		for name, o := range w.Expected.orders {
			s.expected[name] = newOrder(name, o)
		}
	}
	c.merge(w.Documents.problems)
	s.documents = w.Documents.patterns
	c.merge(w.Shipped.problems)
	if len(c.errs) == 0 {
		s.shipped = shippedIndex{keys: newKeySet(w.Shipped.hashes, nil), groups: w.Shipped.groups}
	}
	// A set from before the returns checks judges as it did; one that
	// carries them checks for units coming back twice unless it says not to.
	def, ar := Allow, ""
	if w.Returns != nil || len(w.Shipped.groups) > 0 {
		def = Reject
	}
	if w.Returns != nil {
		ar = w.Returns.AlreadyReturned
	}
	s.returned = c.policy("returns.already_returned", ar, def)
	return s
}

// id checks a site or gateway id like config validation does.
func (c *checker) id(path, v string) {
	for i := 0; i < len(v); i++ {
		if b := v[i]; !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '.' || b == '_' || b == '-') {
			c.bad(path, "ids use only [A-Za-z0-9._-]")
			return
		}
	}
}

func (c *checker) policy(path, p, def string) string {
	switch p {
	case "":
		return def
	case Allow, Warn, Reject:
		return p
	}
	c.bad(path, "want %q, %q or %q", Allow, Warn, Reject)
	return def
}

// productOf checks the gtin/sku pair of a product, deny or expected entry
// and returns its product key ("" for none).
func (c *checker) productOf(path, gtin, sku string) string {
	switch {
	case gtin != "" && sku != "":
		c.bad(path, "give \"gtin\" or \"sku\", not both")
	case gtin != "":
		g, ok := normalGTIN(gtin)
		if !ok {
			c.bad(path+".gtin", "want a GTIN-8, -12, -13 or -14 with a correct check digit")
			return ""
		}
		return gtinKey(g)
	case sku != "":
		if p := checkValue(sku); p != "" {
			c.bad(path+".sku", "%s", p)
			return ""
		}
		return skuKey(sku)
	}
	return ""
}

// normalGTIN left-pads a GTIN to the 14 digits AI (01) carries.
func normalGTIN(g string) (string, bool) {
	switch len(g) {
	case 8, 12, 13, 14:
	default:
		return "", false
	}
	if !checkdigit.VerifyGS1Mod10(g) {
		return "", false
	}
	return strings.Repeat("0", 14-len(g)) + g, true
}

// maxPattern bounds a serial pattern: RE2 runs in linear time, but its
// compiled size grows with the pattern.
const maxPattern = 1024

func (c *checker) product(s *Set, path string, w *wireProduct) {
	key := c.productOf(path, w.GTIN, w.SKU)
	if key == "" && w.GTIN == "" && w.SKU == "" {
		c.bad(path, "a product needs a \"gtin\" or a \"sku\"")
	}
	p := &product{expiry: w.Expiry}
	if w.Serial != nil {
		p.serial = c.serial(path+".serial", w.Serial)
	}
	for i, r := range w.Require {
		switch r {
		case "serial", "lot", "expiry":
			if !slices.Contains(p.require, r) {
				p.require = append(p.require, r)
			}
		default:
			c.bad(fmt.Sprintf("%s.require[%d]", path, i), "want \"serial\", \"lot\" or \"expiry\"")
		}
	}
	if e := w.Expiry; e != nil && (e.WarnWithinDays < 0 || e.WarnWithinDays > 3660) {
		c.bad(path+".expiry.warn_within_days", "want 0 to 3660 days")
	}
	var kids workflow.Children
	if w.Children != nil {
		kids = c.children(path+".children", w.Children)
	}
	if key == "" {
		return
	}
	if _, dup := s.products[key]; dup {
		c.bad(path, "a second rule for the same product")
		return
	}
	s.products[key] = p
	if w.Children != nil {
		s.children[key] = kids
	}
}

// Bounds of a product's "children": the products are kept in the open
// aggregation's state, which is saved with every scan of a pack, and no
// station takes more children than configs' aggregation.max_children
// allows.
const (
	maxChildProducts = 256
	maxChildCount    = 5000
)

// children checks what a parent product requires of its children. A
// product is named as scans' fields name it, and as the station config's
// child_products does: 14 digits are a GTIN-14, anything else a SKU.
func (c *checker) children(path string, w *wireChildren) workflow.Children {
	var k workflow.Children
	if w.Products == nil && w.Count == nil {
		c.bad(path, "name \"products\", a \"count\", or both")
	}
	switch {
	case w.Products == nil:
	case len(w.Products) == 0:
		c.bad(path+".products", "empty: leave it out to allow any product")
	case len(w.Products) > maxChildProducts:
		c.bad(path+".products", "more than %d products", maxChildProducts)
	}
	for i, prod := range w.Products {
		if i >= maxChildProducts {
			break
		}
		pp := path + ".products[" + strconv.Itoa(i) + "]"
		digits := strings.Trim(prod, "0123456789") == ""
		switch n := len(prod); {
		case digits && n == 14 && !checkdigit.VerifyGS1Mod10(prod):
			c.bad(pp, "a GTIN-14 with a wrong check digit")
		case digits && (n == 8 || n == 12 || n == 13) && checkdigit.VerifyGS1Mod10(prod):
			// Scans name a child by the 14 digits of AI (01): a shorter
			// GTIN, taken for a SKU, would never match.
			c.bad(pp, "a GTIN-%d: write it as the GTIN-14 scans carry, %q", n, strings.Repeat("0", 14-n)+prod)
		default:
			if p := checkValue(prod); p != "" {
				c.bad(pp, "%s", p)
			}
		}
	}
	k.Products = slices.Clip(w.Products)
	if w.Count != nil {
		if *w.Count < 1 || *w.Count > maxChildCount {
			c.bad(path+".count", "want 1 to %d", maxChildCount)
		}
		k.Count = *w.Count
	}
	return k
}

func (c *checker) serial(path string, w *wireSerial) *serialRule {
	r := &serialRule{min: w.Min, max: w.Max}
	if w.Pattern != "" {
		switch {
		case len(w.Pattern) > maxPattern:
			c.bad(path+".pattern", "longer than %d bytes", maxPattern)
		default:
			// Compiled alone first, so that a pattern like "a)|(.*" cannot
			// escape the anchors added next.
			if _, err := regexp.Compile(w.Pattern); err != nil {
				c.bad(path+".pattern", "invalid regex: %v", err)
				break
			}
			r.pattern = regexp.MustCompile(`^(?:` + w.Pattern + `)$`)
		}
	}
	if w.Min < 0 {
		c.bad(path+".min", "must not be negative")
	}
	if w.Max < 0 || w.Max != 0 && w.Max < w.Min {
		c.bad(path+".max", "must be 0 (no limit) or at least min")
	}
	if w.Charset != "" {
		if !utf8.ValidString(w.Charset) {
			c.bad(path+".charset", "not valid UTF-8")
		}
		r.charset = true
		var wide strings.Builder
		for _, ch := range w.Charset {
			if ch < 128 {
				r.ascii[ch] = true
			} else {
				wide.WriteRune(ch)
			}
		}
		r.wide = wide.String()
	}
	if w.Check != "" {
		a, ok := checkdigit.ByName(w.Check)
		if !ok {
			c.bad(path+".check", "unknown algorithm; want one of %s", strings.Join(checkdigit.Names(), ", "))
		}
		r.check = a
	}
	return r
}

// maxReason bounds a deny reason code: it becomes part of a reason code in
// every event, and a metric label downstream.
const maxReason = 32

func validReason(r string) bool {
	if r == "" || len(r) > maxReason || r[0] < 'a' || r[0] > 'z' {
		return false
	}
	for i := 0; i < len(r); i++ {
		if b := r[i]; !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '_') {
			return false
		}
	}
	return true
}

// denyList decodes the deny array entry by entry straight into key
// hashes: whether a million keys come as a thousand entries of a thousand
// serials or as a million entries of one, they cost 12 bytes each while
// decoding and after.
type denyList struct {
	hashes   []uint64
	vals     []uint32 // index into reasons
	reasons  []station.Reason
	problems Errors
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *denyList) UnmarshalJSON(b []byte) error {
	n := countKeys(b)
	*l = denyList{hashes: make([]uint64, 0, n), vals: make([]uint32, 0, n)}
	c := checker{}
	seen := map[station.Reason]uint32{}
	var w wireDeny
	if p := eachElement(b, func(i int, elem []byte) {
		// Reuse the lists' buffers from one entry to the next.
		w = wireDeny{Serials: hashList{hashes: w.Serials.hashes[:0]}, Lots: hashList{hashes: w.Lots.hashes[:0]}}
		path := "deny[" + strconv.Itoa(i) + "]"
		if err := json.Unmarshal(elem, &w); err != nil {
			c.typeError(path, err)
			return
		}
		c.denyEntry(l, seen, path, &w)
	}); p != "" {
		c.bad("deny", "%s", p)
	}
	l.problems = c.errs
	return nil
}

// typeError reports an error of json.Unmarshal on an element at path.
func (c *checker) typeError(path string, err error) {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		if ute.Field != "" {
			path += "." + ute.Field
		}
		c.bad(path, "want %s, have a JSON %s", ute.Type, ute.Value)
		return
	}
	c.bad(path, "%v", err)
}

func (c *checker) denyEntry(l *denyList, seen map[station.Reason]uint32, path string, w *wireDeny) {
	prod := c.productOf(path, w.GTIN, w.SKU)
	hasProduct := w.GTIN != "" || w.SKU != ""
	if !validReason(w.Reason) {
		c.bad(path+".reason", "want a code of 1 to %d characters a-z, 0-9 and _, starting with a letter (\"recalled\", \"counterfeit\", \"stolen\")", maxReason)
	}
	if len(w.Message) > maxValue || !utf8.ValidString(w.Message) {
		c.bad(path+".message", "want UTF-8 text of at most %d bytes", maxValue)
	}
	if w.Serials.problem != "" {
		c.bad(path+".serials", "%s", w.Serials.problem)
	}
	if w.Lots.problem != "" {
		c.bad(path+".lots", "%s", w.Lots.problem)
	}
	for _, f := range []struct{ name, v string }{{"serial", w.Serial}, {"lot", w.Lot}} {
		if f.v != "" {
			if p := checkValue(f.v); p != "" {
				c.bad(path+"."+f.name, "%s", p)
			}
		}
	}
	hasLots := w.Lot != "" || len(w.Lots.hashes) > 0
	hasSerials := w.Serial != "" || len(w.Serials.hashes) > 0
	if hasLots && !hasProduct {
		// Lot numbers are only unique within a product.
		c.bad(path, "a lot needs the product it belongs to (\"gtin\" or \"sku\")")
	}
	if !hasProduct && !hasSerials {
		c.bad(path, "an entry names a product, serials, or both")
	}
	if len(c.errs) > 0 {
		return // nothing more is built for a set that will be refused
	}
	r := station.Reason{Code: "denied." + w.Reason, Message: w.Message}
	if r.Message == "" {
		r.Message = "on the deny list: " + w.Reason
	}
	v, ok := seen[r]
	if !ok {
		v = uint32(len(l.reasons))
		seen[r] = v
		l.reasons = append(l.reasons, r)
	}
	add := func(kind byte, hashes []uint64, single string) {
		hp := productHash(kind, prod)
		for _, hv := range hashes {
			l.hashes = append(l.hashes, combine(hp, hv))
			l.vals = append(l.vals, v)
		}
		if single != "" {
			l.hashes = append(l.hashes, combine(hp, valueHash(single)))
			l.vals = append(l.vals, v)
		}
	}
	switch {
	case hasProduct && !hasSerials && !hasLots:
		l.hashes = append(l.hashes, combine(productHash(kindProduct, prod), emptyHash))
		l.vals = append(l.vals, v)
	case hasProduct:
		add(kindSerial, w.Serials.hashes, w.Serial)
		add(kindLot, w.Lots.hashes, w.Lot)
	default:
		add(kindAny, w.Serials.hashes, w.Serial)
	}
}

// expectedList decodes the expected array entry by entry, like denyList.
type expectedList struct {
	orders   map[string]*orderBuild
	problems Errors
}

type orderBuild struct {
	policy    string
	hashes    []uint64
	vals      []uint32 // the line of each hash
	lines     []lineBuild
	byProduct map[string]int // index in lines by product key
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *expectedList) UnmarshalJSON(b []byte) error {
	*l = expectedList{orders: map[string]*orderBuild{}}
	c := checker{}
	var w wireExpected
	if p := eachElement(b, func(i int, elem []byte) {
		w = wireExpected{Serials: hashList{hashes: w.Serials.hashes[:0]}}
		path := "expected[" + strconv.Itoa(i) + "]"
		if err := json.Unmarshal(elem, &w); err != nil {
			c.typeError(path, err)
			return
		}
		c.expectedEntry(l, path, &w)
	}); p != "" {
		c.bad("expected", "%s", p)
	}
	l.problems = c.errs
	return nil
}

func (c *checker) expectedEntry(l *expectedList, path string, w *wireExpected) {
	if p := checkValue(w.Order); p != "" {
		c.bad(path+".order", "%s", p)
		return
	}
	pol := c.policy(path+".policy", w.Policy, Warn)
	o := l.orders[w.Order]
	if o == nil {
		o = &orderBuild{policy: pol}
		l.orders[w.Order] = o
	} else if w.Policy != "" && o.policy != pol {
		c.bad(path+".policy", "entries of order %q disagree on the policy", w.Order)
	}
	if w.Serials.problem != "" {
		c.bad(path+".serials", "%s", w.Serials.problem)
	}
	prod := c.productOf(path, w.GTIN, w.SKU)
	hasProduct := w.GTIN != "" || w.SKU != ""
	n := len(w.Serials.hashes)
	if q := w.Quantity; q != nil {
		switch {
		case *q < 1 || *q > maxQuantity:
			c.bad(path+".quantity", "want 1 to %d", maxQuantity)
		case n > 0 && *q > n:
			c.bad(path+".quantity", "more than the %d serials the entry lists", n)
		}
	}
	if n == 0 && !hasProduct {
		c.bad(path, "an entry names a product, serials, or both")
	}
	if len(c.errs) > 0 {
		return // nothing more is built for a set that will be refused
	}
	li, ok := o.line(prod, n > 0)
	if !ok {
		c.bad(path, "order %q lists serials of this product in one entry and not in another", w.Order)
		return
	}
	line := &o.lines[li]
	switch {
	case w.Quantity != nil:
		line.quantity += *w.Quantity
	case n > 0:
		line.quantity += n
	default:
		line.any = true // an entry without a quantity expects any number
	}
	if line.quantity > maxQuantity {
		c.bad(path+".quantity", "the order's line of this product adds up to more than %d", maxQuantity)
	}
	if n == 0 {
		// Any unit of the product is expected.
		o.hashes = append(o.hashes, combine(productHash(kindProduct, prod), emptyHash))
		o.vals = append(o.vals, uint32(li))
		return
	}
	kind := byte(kindAny)
	if hasProduct {
		kind = kindSerial
	}
	hp := productHash(kind, prod)
	for _, hv := range w.Serials.hashes {
		o.hashes = append(o.hashes, combine(hp, hv))
		o.vals = append(o.vals, uint32(li))
	}
}
