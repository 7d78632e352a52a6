package rules

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/workflow"
)

// What the station's workflow reads of the rule sets: document patterns,
// orders' expected lines, parents' children, and (in judge) the units
// that were shipped.

var _ workflow.Rules = (*Engine)(nil)

// Documents returns the document patterns of the sets in use, the site
// set's first. The slice is built when a set is loaded and shared: callers
// must not modify it.
func (e *Engine) Documents() []workflow.Pattern { return e.state.Load().documents }

// Order returns the expected lines of an order, from the gateway set if it
// names the order, else from the site set: an order is one document (an
// ASN), so a gateway set's version of it replaces the site's whole rather
// than being merged line by line. Judging ("unexpected_serial") uses the
// same order. The Lines slice is shared: callers must not modify it.
func (e *Engine) Order(name string) (workflow.Order, bool) {
	if o := e.state.Load().order(name); o != nil {
		return o.view, true
	}
	return workflow.Order{}, false
}

// Children returns what the sets in use require of the children of a
// pack or build whose parent is of parentProduct (a GTIN-14 or SKU): the
// gateway set's entry for the product if it has one, else the site's. A
// requirement is one rule of the parent, so the gateway's replaces the
// site's whole, as an order does. Products is shared: callers must not
// modify it.
func (e *Engine) Children(parentProduct string) (workflow.Children, bool) {
	c, ok := e.state.Load().children[parentProduct]
	return c, ok
}

func (st *state) order(name string) *order {
	if name == "" {
		return nil
	}
	if st.gateway != nil {
		if o := st.gateway.expected[name]; o != nil {
			return o
		}
	}
	if st.site != nil {
		return st.site.expected[name]
	}
	return nil
}

// inPlace are the modes whose scans handle a unit where it is rather than
// move it, so the seen-serial index does not record them and "duplicates"
// has no policy for them: a case packed after it was received must still
// ship as received, not as a duplicate of its packing.
var inPlace = []string{"pack", "build", "unpack", "assign"}

// Documents.

// maxDocuments bounds the patterns of one set: every read that is not a
// product is tried against each of them.
const maxDocuments = 256

type wireDocument struct {
	Kind    string `json:"kind"`
	Pattern string `json:"pattern"`
	Key     string `json:"key"`
}

// documentList decodes the documents array entry by entry, so that even a
// type error names its entry ("documents[2].pattern").
type documentList struct {
	patterns []workflow.Pattern
	problems Errors
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *documentList) UnmarshalJSON(b []byte) error {
	*l = documentList{}
	c := checker{}
	if p := eachElement(b, func(i int, elem []byte) {
		if i >= maxDocuments {
			if i == maxDocuments {
				c.bad("documents", "more than %d patterns", maxDocuments)
			}
			return
		}
		path := "documents[" + strconv.Itoa(i) + "]"
		var w wireDocument
		if err := json.Unmarshal(elem, &w); err != nil {
			c.typeError(path, err)
			return
		}
		if p, ok := c.document(path, &w); ok {
			l.patterns = append(l.patterns, p)
		}
	}); p != "" {
		c.bad("documents", "%s", p)
	}
	l.patterns = slices.Clip(l.patterns)
	l.problems = c.errs
	return nil
}

func (c *checker) document(path string, w *wireDocument) (workflow.Pattern, bool) {
	n := len(c.errs)
	p := workflow.Pattern{Kind: w.Kind, Key: w.Key}
	if !slices.Contains(wire.DocumentKinds, w.Kind) {
		c.bad(path+".kind", "want one of %s", strings.Join(wire.DocumentKinds, ", "))
	}
	switch {
	case w.Pattern == "":
		c.bad(path+".pattern", "empty")
	case len(w.Pattern) > maxPattern:
		c.bad(path+".pattern", "longer than %d bytes", maxPattern)
	default:
		// Compiled alone first, so that "a)|(.*" cannot escape the anchors.
		re, err := regexp.Compile(w.Pattern)
		if err != nil {
			c.bad(path+".pattern", "invalid regex: %v", err)
			break
		}
		for _, name := range re.SubexpNames() {
			if name != "" && name != "value" {
				// A misspelt "value" would silently make the whole read the value.
				c.bad(path+".pattern", "named group %q: the only name a pattern may use is \"value\"", name)
				break
			}
		}
		p.Match = regexp.MustCompile(`^(?:` + w.Pattern + `)$`)
	}
	switch {
	case w.Key == "":
	case !validKey(w.Key):
		c.bad(path+".key", "want a context key: a letter a-z, then up to 63 of a-z, 0-9 and _")
	case w.Kind == wire.DocClose || w.Kind == wire.DocCancel:
		c.bad(path+".key", "a %q code sets no context key", w.Kind)
	}
	return p, len(c.errs) == n
}

// validKey reports whether k is a context key a document may set:
// [a-z][a-z0-9_]{0,63}.
func validKey(k string) bool { return len(k) <= 64 && validReason(k) }

// Expected lines.

// maxQuantity bounds an expected quantity, so that the lines of an order
// add up without overflow on a 32-bit gateway.
const maxQuantity = 1_000_000_000

// lineBuild is one expected line while its order is decoded.
type lineBuild struct {
	product  string // productKey; "" for serials of any product
	quantity int
	serials  bool // the line lists serials
	any      bool // an entry expects any number of the product
}

// line returns the index of the order's line for prod, adding it; ok is
// false when the line exists and disagrees on listing serials.
func (o *orderBuild) line(prod string, serials bool) (int, bool) {
	if i, ok := o.byProduct[prod]; ok {
		return i, o.lines[i].serials == serials
	}
	if o.byProduct == nil {
		o.byProduct = map[string]int{}
	}
	o.byProduct[prod] = len(o.lines)
	o.lines = append(o.lines, lineBuild{product: prod, serials: serials})
	return len(o.lines) - 1, true
}

// newOrder builds an order from its decoded entries. The key set's values
// are the line indexes, so that the distinct serials of each line can be
// counted once the keys are deduplicated; they are dropped afterwards.
func newOrder(name string, b *orderBuild) *order {
	o := &order{policy: b.policy, keys: newKeySet(b.hashes, b.vals)}
	listed := make([]int, len(b.lines))
	for _, v := range o.keys.vals {
		listed[v]++
	}
	o.keys.vals = nil
	o.view = workflow.Order{Name: name, Policy: b.policy, Lines: make([]workflow.Line, len(b.lines))}
	for i, l := range b.lines {
		wl := workflow.Line{Product: productName(l.product), Quantity: l.quantity, Serials: l.serials}
		switch {
		case l.any:
			wl.Quantity = 0
		case l.serials:
			// A serial listed twice is expected once.
			wl.Quantity = min(wl.Quantity, listed[i])
			o.view.Listed = o.listed
		}
		o.view.Lines[i] = wl
	}
	return o
}

// productName is a product key as scans' fields name it: the GTIN-14 or
// the SKU.
func productName(key string) string {
	if key == "" {
		return ""
	}
	return key[1:]
}

// listed reports whether the order lists serial for the line of product
// (a GTIN-14 or SKU; "" for the line of serials of any product).
func (o *order) listed(product, serial string) bool {
	hv := valueHash(serial)
	if product == "" {
		_, ok := o.keys.lookup(combine(anyHash, hv))
		return ok
	}
	for _, prefix := range [2]byte{'g', 'k'} {
		if _, ok := o.keys.lookup(combine(keyHash(kindSerial, prefix, product), hv)); ok {
			return true
		}
	}
	return false
}

// Returns: what was shipped.

type wireShipped struct {
	Customer string   `json:"customer"`
	Order    string   `json:"order"`
	GTIN     string   `json:"gtin"`
	SKU      string   `json:"sku"`
	Serials  hashList `json:"serials"`
	Policy   string   `json:"policy"`
	Reason   string   `json:"reason"`
	Message  string   `json:"message"`
}

type wireReturns struct {
	AlreadyReturned string `json:"already_returned"`
}

// Levels of a shipped list: what the station's context must name for it
// to apply.
const (
	levelCustomer = 'c' // the context's "customer"
	levelOrder    = 'o' // the context's "order"
	levelAll      = '*' // always
)

// shipKey names one shipped list: a level, its customer or order, and a
// product key. The serials of every entry with the same key form one list.
type shipKey struct {
	level          byte
	value, product string
}

// shipGroup is one shipped list's finding; its serials are in the set's
// shipped key set under combine(hash, valueHash(serial)).
type shipGroup struct {
	hash    uint64
	policy  string
	reason  string
	message string // "" for the default message
}

// shippedIndex is what a set knows of the units shipped.
type shippedIndex struct {
	keys   keySet
	groups map[shipKey]*shipGroup
}

// shippedList decodes the shipped array entry by entry straight into key
// hashes, like denyList.
type shippedList struct {
	hashes   []uint64
	groups   map[shipKey]*shipGroup
	problems Errors
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *shippedList) UnmarshalJSON(b []byte) error {
	*l = shippedList{hashes: make([]uint64, 0, countShipped(b)), groups: map[shipKey]*shipGroup{}}
	c := checker{}
	var w wireShipped
	if p := eachElement(b, func(i int, elem []byte) {
		w = wireShipped{Serials: hashList{hashes: w.Serials.hashes[:0]}}
		path := "shipped[" + strconv.Itoa(i) + "]"
		if err := json.Unmarshal(elem, &w); err != nil {
			c.typeError(path, err)
			return
		}
		c.shippedEntry(l, path, &w)
	}); p != "" {
		c.bad("shipped", "%s", p)
	}
	l.problems = c.errs
	return nil
}

// countShipped counts the keys the shipped array will make, like
// countKeys: an entry naming both a customer and an order lists its
// serials twice, once for each.
func countShipped(list []byte) int {
	n := 0
	eachElement(list, func(_ int, elem []byte) {
		k, levels := 0, 0
		eachMember(elem, func(key, val []byte) {
			switch string(key) {
			case "serials":
				eachElement(val, func(int, []byte) { k++ })
			case "customer", "order":
				levels++
			}
		})
		n += k * max(levels, 1)
	})
	return n
}

// engineReasons are the engine's own codes, which a shipped entry's
// configured reason must not borrow: a "duplicate" that means "not
// shipped" would mislead every consumer of scan events.
var engineReasons = []string{
	ReasonUnknownProduct, ReasonMissingSerial, ReasonMissingLot, ReasonMissingExpiry, ReasonSerialTooShort,
	ReasonSerialTooLong, ReasonSerialCharset, ReasonSerialPattern, ReasonSerialCheckDigit, ReasonExpired,
	ReasonExpiredClockUnsynced, ReasonExpiresSoon, ReasonDuplicate, ReasonNotReceived, ReasonUnexpectedSerial,
	ReasonAlreadyReturned,
}

func (c *checker) shippedEntry(l *shippedList, path string, w *wireShipped) {
	prod := c.productOf(path, w.GTIN, w.SKU)
	if w.GTIN == "" && w.SKU == "" {
		c.bad(path, "an entry names the product shipped (\"gtin\" or \"sku\")")
	}
	for _, f := range []struct{ name, v string }{{"customer", w.Customer}, {"order", w.Order}} {
		if f.v != "" {
			if p := checkValue(f.v); p != "" {
				c.bad(path+"."+f.name, "%s", p)
			}
		}
	}
	switch {
	case w.Serials.problem != "":
		c.bad(path+".serials", "%s", w.Serials.problem)
	case len(w.Serials.hashes) == 0:
		c.bad(path+".serials", "list the serials shipped")
	}
	policy := Reject
	switch w.Policy {
	case "":
	case Warn, Reject:
		policy = w.Policy
	default:
		c.bad(path+".policy", "want %q or %q", Warn, Reject)
	}
	reason := ReasonNotShipped
	switch {
	case w.Reason == "":
	case !validReason(w.Reason):
		c.bad(path+".reason", "want a code of 1 to %d characters a-z, 0-9 and _, starting with a letter (\"not_shipped\", \"counterfeit\")", maxReason)
	case slices.Contains(engineReasons, w.Reason):
		c.bad(path+".reason", "%q is a reason code of the engine's own", w.Reason)
	default:
		reason = w.Reason
	}
	if len(w.Message) > maxValue || !utf8.ValidString(w.Message) {
		c.bad(path+".message", "want UTF-8 text of at most %d bytes", maxValue)
	}
	if len(c.errs) > 0 {
		return // nothing more is built for a set that will be refused
	}
	var keys []shipKey
	if w.Customer != "" {
		keys = append(keys, shipKey{levelCustomer, w.Customer, prod})
	}
	if w.Order != "" {
		keys = append(keys, shipKey{levelOrder, w.Order, prod})
	}
	if len(keys) == 0 {
		keys = append(keys, shipKey{levelAll, "", prod})
	}
	for _, k := range keys {
		g := l.groups[k]
		if g == nil {
			g = &shipGroup{hash: shipHash(k.level, k.value, k.product), policy: policy, reason: reason, message: w.Message}
			l.groups[k] = g
		} else {
			// Entries of one list are one check: they must say the same.
			what := k.describe()
			if w.Policy != "" && g.policy != policy {
				c.bad(path+".policy", "entries for %s disagree on the policy", what)
			}
			if w.Reason != "" && g.reason != reason {
				c.bad(path+".reason", "entries for %s disagree on the reason", what)
			}
			if w.Message != "" && g.message != w.Message {
				c.bad(path+".message", "entries for %s disagree on the message", what)
			}
		}
		for _, hv := range w.Serials.hashes {
			l.hashes = append(l.hashes, combine(g.hash, hv))
		}
	}
}

// describe names a shipped list in messages: `GTIN 0950... shipped to
// customer "ACME"`.
func (k shipKey) describe() string {
	p := "GTIN " + productName(k.product)
	if strings.HasPrefix(k.product, "k") {
		p = "SKU " + productName(k.product)
	}
	switch k.level {
	case levelCustomer:
		return fmt.Sprintf("%s shipped to customer %q", p, k.value)
	case levelOrder:
		return fmt.Sprintf("%s shipped on order %q", p, k.value)
	}
	return p + " shipped to anyone"
}

// judge checks a returned unit against the shipped lists its station's
// context selects: each list that names the unit's product and not its
// serial is a finding.
func (x *shippedIndex) judge(sc *scanInfo, hv uint64, ctx map[string]string, v *verdict) {
	for _, k := range [3]shipKey{
		{levelCustomer, ctx["customer"], sc.product},
		{levelOrder, ctx["order"], sc.product},
		{levelAll, "", sc.product},
	} {
		if k.level != levelAll && k.value == "" {
			continue
		}
		g := x.groups[k]
		if g == nil {
			continue
		}
		if _, ok := x.keys.lookup(combine(g.hash, hv)); ok {
			continue
		}
		msg := g.message
		if msg == "" {
			msg = "serial " + sc.serial + " of " + sc.productName()
			switch k.level {
			case levelCustomer:
				msg += " was not shipped to customer " + k.value
			case levelOrder:
				msg += " was not shipped on order " + k.value
			default:
				msg += " was never shipped"
			}
		}
		v.add(g.policy, g.reason, msg)
	}
}
