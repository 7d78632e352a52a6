package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/gs1"
	"github.com/scangw/scangw/station/hibc"
	"github.com/scangw/scangw/station/inspect"
)

// Schemes a scan is read in: inspect's, which `scangw inspect` prints.
const (
	SchemeGS1         = inspect.SchemeGS1
	SchemeDigitalLink = inspect.SchemeDigitalLink
	SchemeHIBC        = inspect.SchemeHIBC
	SchemePlain       = inspect.SchemePlain
)

// Reason codes of the engine's own findings. They are part of the wire
// contract (scan reasons): add new ones, never rename. Syntax errors are
// the parser's code behind "gs1." or "hibc." ("gs1.bad_check_digit"), and
// a deny-list match is "denied." and the entry's reason ("denied.recalled").
const (
	ReasonUnknownProduct       = "unknown_product"
	ReasonMissingSerial        = "missing_serial"
	ReasonMissingLot           = "missing_lot"
	ReasonMissingExpiry        = "missing_expiry"
	ReasonSerialTooShort       = "serial_too_short"
	ReasonSerialTooLong        = "serial_too_long"
	ReasonSerialCharset        = "serial_charset"
	ReasonSerialPattern        = "serial_pattern"
	ReasonSerialCheckDigit     = "serial_check_digit"
	ReasonExpired              = "expired"
	ReasonExpiredClockUnsynced = "expired_clock_unsynced"
	ReasonExpiresSoon          = "expires_soon"
	ReasonDuplicate            = "duplicate"
	ReasonNotReceived          = "not_received"
	ReasonUnexpectedSerial     = "unexpected_serial"
	// ReasonNotShipped is a returned unit whose serial a shipped list of
	// its product does not name (an entry may configure its own code).
	ReasonNotShipped = "not_shipped"
	// ReasonAlreadyReturned is a returned unit whose last movement here
	// was a return.
	ReasonAlreadyReturned = "already_returned"
)

// maxSyntaxReasons bounds the parser errors a scan carries: the first few
// say what is wrong; a hundred would only bloat every event.
const maxSyntaxReasons = 8

// scanInfo is what a scan says, read in its scheme.
type scanInfo struct {
	scheme                    string
	gtin, sscc, sku, lic, pcn string
	product                   string // gtinKey or skuKey; "" when none
	serial                    string
	hasSerial                 bool
	lot                       string
	hasLot                    bool
	expiry                    time.Time // a date, UTC midnight
	hasExpiry                 bool
	key                       string // seen-index key; "" when none
	syntax                    []station.Reason
}

// classify reads a scan through inspect.Classify, the same reading as
// `scangw inspect`. ref places two-digit years (GenSpecs 7.12).
func classify(sym string, data []byte, ctx map[string]string, ref time.Time) scanInfo {
	body := string(data)
	pd := inspect.Classify(sym, body, func() time.Time { return ref })
	var sc scanInfo
	switch pd.Scheme {
	case inspect.SchemeHIBC:
		sc.fromHIBC(pd.HIBC, pd.Err)
	case inspect.SchemeGS1, inspect.SchemeDigitalLink:
		sc.fromGS1(pd.Scheme, pd.GS1, pd.Err)
	default:
		sc.plain(body, ctx)
	}
	return sc
}

func (sc *scanInfo) plain(body string, ctx map[string]string) {
	sc.scheme = SchemePlain
	sc.serial, sc.hasSerial = body, body != ""
	if sku := ctx["sku"]; sku != "" {
		sc.sku, sc.product = sku, skuKey(sku)
	}
	if body != "" {
		sc.key = "plain:" + body
	}
}

func (sc *scanInfo) fromGS1(scheme string, r *gs1.Result, err error) {
	sc.scheme = scheme
	var es gs1.Errors
	if errors.As(err, &es) {
		for _, e := range es[:min(len(es), maxSyntaxReasons)] {
			msg := e.Msg
			if e.AI != "" {
				msg = "(" + e.AI + ") " + msg
			}
			sc.syntax = append(sc.syntax, station.Reason{Code: "gs1." + e.Code, Message: msg + " at byte " + strconv.Itoa(e.Pos)})
		}
	} else if err != nil {
		sc.syntax = append(sc.syntax, station.Reason{Code: "gs1.error", Message: err.Error()})
	}
	if r == nil {
		return
	}
	sc.gtin, _ = r.Lookup("01")
	sc.sscc, _ = r.Lookup("00")
	sc.serial, sc.hasSerial = r.Lookup("21")
	sc.lot, sc.hasLot = r.Lookup("10")
	if sc.expiry, sc.hasExpiry = r.Date("17"); !sc.hasExpiry {
		sc.expiry, sc.hasExpiry = r.Date("7003") // expiration date and time
	}
	switch {
	case sc.gtin != "" && sc.hasSerial:
		sc.key = "gs1:(01)" + sc.gtin + "(21)" + sc.serial
	case sc.sscc != "":
		// An SSCC is a serial number by itself.
		sc.key = "gs1:(00)" + sc.sscc
		if !sc.hasSerial {
			sc.serial, sc.hasSerial = sc.sscc, true
		}
	}
	if sc.gtin != "" {
		sc.product = gtinKey(sc.gtin)
	}
}

func (sc *scanInfo) fromHIBC(r *hibc.Result, err error) {
	sc.scheme = SchemeHIBC
	var es hibc.Errors
	if errors.As(err, &es) {
		for _, e := range es[:min(len(es), maxSyntaxReasons)] {
			sc.syntax = append(sc.syntax, station.Reason{Code: "hibc." + e.Code, Message: e.Msg + " at byte " + strconv.Itoa(e.Pos)})
		}
	}
	if r == nil {
		return
	}
	if p := r.Primary; p != nil {
		sc.lic, sc.pcn = p.LIC, p.PCN
		sc.sku = p.LIC + p.PCN
		sc.product = skuKey(sc.sku)
	}
	if s := r.Secondary; s != nil {
		sc.serial, sc.hasSerial = s.Serial, s.Serial != ""
		sc.lot, sc.hasLot = s.Lot, s.Lot != ""
		sc.expiry, sc.hasExpiry = s.Expiry, !s.Expiry.IsZero()
	}
	if sc.sku != "" && sc.hasSerial {
		sc.key = "hibc:" + sc.sku + "/" + sc.serial
	}
}

func (sc *scanInfo) fields() map[string]string {
	f := make(map[string]string, 8)
	put := func(k, v string) {
		if v != "" {
			f[k] = v
		}
	}
	put("scheme", sc.scheme)
	put("gtin", sc.gtin)
	put("sscc", sc.sscc)
	put("sku", sc.sku)
	put("lic", sc.lic)
	put("pcn", sc.pcn)
	if sc.hasSerial && sc.serial != sc.sscc {
		put("serial", sc.serial)
	}
	put("lot", sc.lot)
	if sc.hasExpiry {
		f["expiry"] = sc.expiry.Format(time.DateOnly)
	}
	return f
}

// productName is how messages name the scan's product.
func (sc *scanInfo) productName() string {
	if sc.gtin != "" {
		return "GTIN " + sc.gtin
	}
	return "SKU " + sc.sku
}

// verdict collects reasons and the worst policy hit.
type verdict struct {
	reject, warn bool
	reasons      []station.Reason
}

func (v *verdict) add(policy, code, msg string) {
	switch policy {
	case Reject:
		v.reject = true
	case Warn:
		v.warn = true
	default:
		return
	}
	r := station.Reason{Code: code, Message: msg}
	for _, have := range v.reasons {
		if have == r {
			return // both scopes found the same thing
		}
	}
	v.reasons = append(v.reasons, r)
}

func (v *verdict) result() string {
	switch {
	case v.reject:
		return station.Rejected
	case v.warn:
		return station.Warning
	}
	return station.Accepted
}

// lookups are the key hashes of one scan, computed once for all sets.
type lookups struct {
	serial, anySerial, lot, product uint64
	value                           uint64 // valueHash(serial) when the scan has one
}

var anyHash = productHash(kindAny, "")

func (sc *scanInfo) lookups() lookups {
	var l lookups
	if sc.hasSerial {
		hv := valueHash(sc.serial)
		l.value = hv
		l.anySerial = combine(anyHash, hv)
		if sc.product != "" {
			l.serial = combine(productHash(kindSerial, sc.product), hv)
		}
	}
	if sc.product != "" {
		if sc.hasLot {
			l.lot = combine(productHash(kindLot, sc.product), valueHash(sc.lot))
		}
		l.product = combine(productHash(kindProduct, sc.product), emptyHash)
	}
	return l
}

// prior is the seen-index answer for a scan, asked at most once.
type prior struct {
	asked, ok bool
	mode      string
	at        time.Time
}

func (e *Engine) judge(s *station.Scan, withFields bool) Judgement {
	st := e.state.Load()
	ref := e.refTime(st, s)
	sc := classify(s.Symbology, s.Data, s.Context, ref)
	j := Judgement{RulesVersion: st.name, Key: sc.key}
	if withFields {
		j.Fields = sc.fields()
	}
	var v verdict
	for _, r := range sc.syntax {
		v.add(Reject, r.Code, r.Message)
	}
	if len(sc.syntax) == 0 && (st.site != nil || st.gateway != nil) {
		l := sc.lookups()
		var pr prior
		for _, set := range []*Set{st.site, st.gateway} {
			if set != nil {
				e.apply(st, set, &sc, &l, s, ref, &v, &pr)
			}
		}
	}
	j.Verdict, j.Reasons = v.result(), v.reasons
	return j
}

// apply judges the scan against set, one of those in st. With both a site
// and a gateway set, both apply and the stricter finding wins, except for
// the order in context: only the one Order returns is judged.
func (e *Engine) apply(st *state, set *Set, sc *scanInfo, l *lookups, s *station.Scan, ref time.Time, v *verdict, pr *prior) {
	if sc.product != "" {
		if p := set.products[sc.product]; p != nil {
			e.product(p, sc, s, ref, v)
		} else {
			v.add(set.unknownProduct, ReasonUnknownProduct, "no rule for "+sc.productName())
		}
	}

	// Deny list: a unit, a lot, a whole product, or a serial of any product.
	for _, h := range []uint64{l.serial, l.anySerial, l.lot, l.product} {
		if h == 0 {
			continue
		}
		if i, ok := set.deny.lookup(h); ok {
			r := set.denyReasons[i]
			v.add(Reject, r.Code, r.Message)
		}
	}

	if name := s.Context["order"]; name != "" {
		if o := set.expected[name]; o != nil && o == st.order(name) && !o.expects(l) {
			what := "this unit"
			if sc.hasSerial {
				what = "serial " + sc.serial
			}
			v.add(o.policy, ReasonUnexpectedSerial, what+" is not expected for order "+name)
		}
	}

	if s.Mode == "return" && sc.hasSerial && sc.product != "" && len(set.shipped.groups) > 0 {
		set.shipped.judge(sc, l.value, s.Context, v)
	}

	e.duplicates(st, set, sc, s, v, pr)
}

func (o *order) expects(l *lookups) bool {
	for _, h := range []uint64{l.serial, l.anySerial, l.product} {
		if h != 0 {
			if _, ok := o.keys.lookup(h); ok {
				return true
			}
		}
	}
	return false
}

func (e *Engine) duplicates(st *state, set *Set, sc *scanInfo, s *station.Scan, v *verdict, pr *prior) {
	if e.seen == nil || sc.key == "" {
		return
	}
	dup := set.duplicates[s.Mode]
	ship, returned := Allow, Allow
	switch s.Mode {
	case "ship":
		ship = set.shipReceived
	case "return":
		returned = st.returned
	}
	if dup == "" && ship == Allow && returned == Allow {
		return
	}
	if !pr.asked {
		pr.asked = true
		pr.mode, pr.at, pr.ok = e.seenOrHeld(sc.key)
	}
	when := func() string { return pr.at.UTC().Format(time.RFC3339) }
	switch {
	case !pr.ok || pr.mode != s.Mode:
	case returned != Allow:
		// A unit returned twice is one finding, not also a "duplicate" of
		// this or the other set: the stricter policy says what it does.
		v.add(stricter(returned, dup), ReasonAlreadyReturned, "already returned at "+when())
	case dup != "":
		v.add(dup, ReasonDuplicate, "already scanned in "+pr.mode+" mode at "+when())
	}
	switch {
	case ship == Allow:
	case !pr.ok:
		v.add(ship, ReasonNotReceived, "shipped but never received here")
	case pr.mode == "ship":
		v.add(ship, ReasonNotReceived, "shipped but not received since it was shipped at "+when())
	}
}

// stricter returns the stricter of two policies ("" is allow).
func stricter(a, b string) string {
	if a == Reject || b == Reject {
		return Reject
	}
	if a == Warn || b == Warn {
		return Warn
	}
	return Allow
}

func (e *Engine) product(p *product, sc *scanInfo, s *station.Scan, ref time.Time, v *verdict) {
	for _, r := range p.require {
		switch {
		case r == "serial" && !sc.hasSerial:
			v.add(Reject, ReasonMissingSerial, sc.productName()+" needs a serial number")
		case r == "lot" && !sc.hasLot:
			v.add(Reject, ReasonMissingLot, sc.productName()+" needs a lot number")
		case r == "expiry" && !sc.hasExpiry:
			v.add(Reject, ReasonMissingExpiry, sc.productName()+" needs an expiry date")
		}
	}
	if p.serial != nil && sc.hasSerial {
		p.serial.judge(sc.serial, v)
	}
	if x := p.expiry; x != nil && sc.hasExpiry {
		y, m, d := ref.In(e.loc).Date()
		today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		y, m, d = sc.expiry.Date()
		exp := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		days := int(exp.Sub(today).Hours() / 24)
		date := exp.Format(time.DateOnly)
		switch {
		case days < 0 && !s.ClockSynced:
			// A Pi has no RTC: a clock that was never synchronised must not
			// turn good stock away.
			v.add(Warn, ReasonExpiredClockUnsynced, "expired on "+date+" by the gateway's clock, which is not synchronised")
		case days < 0 && x.RejectExpired:
			v.add(Reject, ReasonExpired, "expired on "+date)
		case days < 0:
			v.add(Warn, ReasonExpired, "expired on "+date)
		case x.WarnWithinDays > 0 && days <= x.WarnWithinDays:
			v.add(Warn, ReasonExpiresSoon, fmt.Sprintf("expires on %s, in %d days", date, days))
		}
	}
}

func (r *serialRule) judge(serial string, v *verdict) {
	if n := utf8.RuneCountInString(serial); n < r.min {
		v.add(Reject, ReasonSerialTooShort, fmt.Sprintf("serial has %d characters, at least %d required", n, r.min))
	} else if r.max > 0 && n > r.max {
		v.add(Reject, ReasonSerialTooLong, fmt.Sprintf("serial has %d characters, at most %d allowed", n, r.max))
	}
	if r.charset {
		for i, ch := range serial {
			if ch < 128 && r.ascii[ch] || ch >= 128 && strings.ContainsRune(r.wide, ch) {
				continue
			}
			v.add(Reject, ReasonSerialCharset, fmt.Sprintf("serial character %q at %d is not allowed", ch, i))
			break
		}
	}
	if r.pattern != nil && !r.pattern.MatchString(serial) {
		v.add(Reject, ReasonSerialPattern, "serial does not match the product's pattern "+r.pattern.String())
	}
	if r.check != nil && !r.check.Verify(serial) {
		v.add(Reject, ReasonSerialCheckDigit, "serial's "+r.check.Name()+" check character is wrong")
	}
}
