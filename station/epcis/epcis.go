// Package epcis renders a station's facts as GS1 EPCIS 2.0 events in
// JSON-LD, the form regulated supply chains (DSCSA, EU FMD) exchange: a
// scan as an ObjectEvent, a closed pack, build or unpack as an
// AggregationEvent. Each call makes one EPCISDocument holding one event.
//
// # What an event says
//
// EPCIS answers what (the identifiers), when (eventTime with the local
// eventTimeZoneOffset), where (readPoint: the dock door; bizLocation: the
// site, both configured SGLNs) and why (bizStep, disposition and the
// business transactions). The why comes from the station's mode, in GS1
// Core Business Vocabulary (CBV) 2.0 terms:
//
//	mode      event        action   bizStep         disposition
//	receive   Object       OBSERVE  receiving       in_progress
//	ship      Object       OBSERVE  shipping        in_transit
//	return    Object       OBSERVE  receiving       returned
//	transfer  Object       OBSERVE  transporting    -
//	count     Object       OBSERVE  cycle_counting  -
//	inspect   Object       OBSERVE  inspecting      -
//	assign    Object       ADD      commissioning   active
//	pack      Aggregation  ADD      packing         in_progress
//	pack      Aggregation  DELETE   unpacking       -
//	unpack    Aggregation  DELETE   unpacking       -
//	build     Aggregation  ADD      assembling      -
//	build     Aggregation  DELETE   disassembling   -
//
// A return is received goods whose disposition says they came back (CBV:
// "sent or brought back … may or may not be sellable"). A transfer is
// taken to move goods between sites (CBV transporting: "from one location
// to another using a vehicle"); a move within the site is storing, and a
// count for the books stock_taking: Config.BizSteps and
// Config.Dispositions say so per mode. assign is the first use of a
// serial, hence commissioning with action ADD. Scans in pack, build and
// unpack make no ObjectEvent: their fact is the AggregationEvent.
//
// The context becomes bizTransactionList: order → po, pick → po (CBV has
// no sales-order type; a sales order is the seller's side of the buyer's
// order), more by Config.BizTransactions. A value that is not a URI is
// made one under Config.TransactionPrefix, by default CBV's private form
// urn:epcglobal:cbv:bt:<GLN>:<id>.
//
// # Identifiers
//
// A serialized unit is an SGTIN, https://id.gs1.org/01/<GTIN>/21/<serial>
// (or urn:epc:id:sgtin:…), an SSCC is https://id.gs1.org/00/<SSCC>; both go
// in epcList. A product without a serial is a quantity of its class in
// quantityList, quantity 1: the GTIN with its lot
// (https://id.gs1.org/01/<GTIN>/10/<lot>, urn:epc:class:lgtin:…) or the
// bare GTIN (urn:epc:idpat:sgtin:<prefix>.<ref>.*). Units with no GS1 key
// (HIBC, plain text) have no EPCIS identity: a scan of one, and an
// aggregation that involves one, make no document.
//
// # Identity and extensions
//
// eventID is the CBV 2.0 EPCIS Event Hash ID (ni:///sha-256;…?ver=CBV2.0),
// so anyone can recompute it from the event, and the same fact always
// renders the same bytes (creationDate is the event's time, too). The
// scangw event it renders is named in the extension scangw:event, beside
// scangw:station, scangw:scanner, scangw:seq and scangw:epoch (namespace
// Namespace, declared in the document's @context): a consumer finds the
// scan, and gaps, as on the scan topic. Operators are not named: EPCIS
// documents leave the company.
//
// Only facts become events: a rejected scan returns nil and no error, as
// do the other cases above that have no EPCIS rendering.
package epcis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scangw/scangw/station/gs1"
	"github.com/scangw/scangw/station/wire"
)

// Namespace is the JSON-LD namespace of scangw's extension fields
// (prefix "scangw").
const Namespace = "https://scangw.io/ns/"

// epcisContext is GS1's EPCIS 2.0 context, which makes the bare CBV terms
// and field names mean their URIs.
const epcisContext = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"

// step is one row of the mode table.
type step struct{ action, bizStep, disposition string }

var objectSteps = map[string]step{
	"receive":  {"OBSERVE", "receiving", "in_progress"},
	"ship":     {"OBSERVE", "shipping", "in_transit"},
	"return":   {"OBSERVE", "receiving", "returned"},
	"transfer": {"OBSERVE", "transporting", ""},
	"count":    {"OBSERVE", "cycle_counting", ""},
	"inspect":  {"OBSERVE", "inspecting", ""},
	"assign":   {"ADD", "commissioning", "active"},
}

type modeAction struct{ mode, action string }

var aggregationSteps = map[modeAction]step{
	{"pack", wire.AggAdd}:      {"ADD", "packing", "in_progress"},
	{"pack", wire.AggDelete}:   {"DELETE", "unpacking", ""},
	{"unpack", wire.AggDelete}: {"DELETE", "unpacking", ""},
	{"build", wire.AggAdd}:     {"ADD", "assembling", ""},
	{"build", wire.AggDelete}:  {"DELETE", "disassembling", ""},
}

// ObjectEvent renders an accepted or warned scan as an EPCISDocument with
// one ObjectEvent; id is the scan event's id, t its time. It returns nil
// and no error for a scan that is no EPCIS fact: rejected, in an
// aggregation mode, or of a unit without a GS1 key.
func ObjectEvent(c Config, id string, t time.Time, d *wire.ScanData) ([]byte, error) {
	if d == nil {
		return nil, errNoData
	}
	if d.Verdict != wire.Accepted && d.Verdict != wire.Warning {
		return nil, nil
	}
	st, ok := objectSteps[d.Mode]
	if !ok {
		if knownMode(d.Mode) {
			return nil, nil // an aggregation mode
		}
		return nil, fmt.Errorf("epcis: scan %s: mode %q has no EPCIS business step", id, d.Mode)
	}
	p, err := c.plan()
	if err != nil {
		return nil, fmt.Errorf("epcis: config: %w", err)
	}
	u, ok, err := p.scanUnit(d.Fields)
	if err != nil || !ok {
		return nil, wrap(id, err)
	}
	e, h := p.event("ObjectEvent", d.Mode, st, t)
	if u.class {
		e.QuantityList = []quantity{{EPCClass: u.epc, Quantity: 1}}
		h.classes = []string{u.dl}
	} else {
		e.EPCList, h.epcs = []string{u.epc}, []string{u.dl}
	}
	e.BizTransactionList = p.bizTransactions(d.Context)
	e.Event, e.Station, e.Scanner, e.Seq, e.Epoch = id, d.Station, d.Scanner, d.Seq, d.Epoch
	return encode(e, h)
}

// AggregationEvent renders a closed aggregation as an EPCISDocument with
// one AggregationEvent; id is the aggregation event's id, t its time. It
// returns nil and no error when the parent or a child has no GS1 key, and
// for an add without children (a delete without them removes them all).
func AggregationEvent(c Config, id string, t time.Time, d *wire.AggregationData) ([]byte, error) {
	if d == nil {
		return nil, errNoData
	}
	st, ok := aggregationSteps[modeAction{d.Mode, d.Action}]
	if !ok {
		return nil, fmt.Errorf("epcis: aggregation %s: no EPCIS business step for mode %q, action %q", id, d.Mode, d.Action)
	}
	p, err := c.plan()
	if err != nil {
		return nil, fmt.Errorf("epcis: config: %w", err)
	}
	parent, ok, err := p.keyUnit(d.Parent)
	if err != nil || !ok {
		return nil, wrap(id, err)
	}
	e, h := p.event("AggregationEvent", d.Mode, st, t)
	e.ParentID, h.parent = parent.epc, parent.dl
	for _, k := range d.Children {
		u, ok, err := p.keyUnit(k)
		if err != nil || !ok {
			return nil, wrap(id, err)
		}
		if !slices.Contains(e.ChildEPCs, u.epc) { // EPCIS lists each child once
			e.ChildEPCs, h.children = append(e.ChildEPCs, u.epc), append(h.children, u.dl)
		}
	}
	if len(e.ChildEPCs) == 0 && st.action == "ADD" {
		return nil, nil
	}
	e.BizTransactionList = p.bizTransactions(d.Context)
	e.Event, e.Station, e.Seq, e.Epoch = id, d.Station, d.Seq, d.Epoch
	return encode(e, h)
}

var errNoData = errors.New("epcis: no event data")

func wrap(id string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("epcis: event %s: %w", id, err)
}

// The JSON-LD of a document, in the field order of the standard's
// examples.
type (
	document struct {
		Context       []any  `json:"@context"`
		Type          string `json:"type"`
		SchemaVersion string `json:"schemaVersion"`
		CreationDate  string `json:"creationDate"`
		Body          struct {
			EventList []*event `json:"eventList"`
		} `json:"epcisBody"`
	}
	event struct {
		Type                string        `json:"type"`
		EventID             string        `json:"eventID"`
		EventTime           string        `json:"eventTime"`
		EventTimeZoneOffset string        `json:"eventTimeZoneOffset"`
		ParentID            string        `json:"parentID,omitempty"`
		EPCList             []string      `json:"epcList,omitempty"`
		ChildEPCs           []string      `json:"childEPCs,omitempty"`
		QuantityList        []quantity    `json:"quantityList,omitempty"`
		Action              string        `json:"action"`
		BizStep             string        `json:"bizStep,omitempty"`
		Disposition         string        `json:"disposition,omitempty"`
		ReadPoint           *place        `json:"readPoint,omitempty"`
		BizLocation         *place        `json:"bizLocation,omitempty"`
		BizTransactionList  []transaction `json:"bizTransactionList,omitempty"`
		// Extensions: each one is hashed by extensions().
		Event   string `json:"scangw:event,omitempty"`
		Station string `json:"scangw:station,omitempty"`
		Scanner string `json:"scangw:scanner,omitempty"`
		Seq     uint64 `json:"scangw:seq,omitempty"`
		Epoch   string `json:"scangw:epoch,omitempty"`
	}
	quantity struct {
		EPCClass string `json:"epcClass"`
		Quantity int    `json:"quantity"`
	}
	place struct {
		ID string `json:"id"`
	}
	transaction struct {
		Type           string `json:"type,omitempty"`
		BizTransaction string `json:"bizTransaction"`
	}
)

// extensions lists e's extension fields as the event hash names them.
func (e *event) extensions() []string {
	var x []string
	add := func(name, v string) {
		if v != "" {
			x = append(x, "{"+Namespace+"}"+name+"="+v)
		}
	}
	add("event", e.Event)
	add("station", e.Station)
	add("scanner", e.Scanner)
	if e.Seq != 0 {
		add("seq", strconv.FormatUint(e.Seq, 10))
	}
	add("epoch", e.Epoch)
	return x
}

// event starts an event of the mode with the plan's places and the
// mode's why.
func (p *plan) event(typ, mode string, st step, t time.Time) (*event, *canon) {
	loc := p.c.Location
	if loc == nil {
		loc = t.Location()
	}
	// The hash counts milliseconds; the document must show the same ones.
	t = t.Round(time.Millisecond).In(loc)
	if v, ok := p.c.BizSteps[mode]; ok {
		st.bizStep = v
	}
	if v, ok := p.c.Dispositions[mode]; ok {
		st.disposition = v
	}
	e := &event{
		Type:                typ,
		EventTime:           t.Format(timeFormat),
		EventTimeZoneOffset: t.Format("-07:00"),
		Action:              st.action,
		BizStep:             st.bizStep,
		Disposition:         st.disposition,
		ReadPoint:           &place{p.readPoint.uri},
	}
	h := &canon{utc: t.UTC().Format("2006-01-02T15:04:05.000Z"), readPoint: p.readPoint.dl}
	if p.bizLocation.uri != "" {
		e.BizLocation, h.bizLocation = &place{p.bizLocation.uri}, p.bizLocation.dl
	}
	return e, h
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// bizTransactions lists the context's business transactions, by key.
func (p *plan) bizTransactions(ctx map[string]string) []transaction {
	var list []transaction
	for _, k := range slices.Sorted(maps.Keys(ctx)) {
		typ, v := p.transactions[k], ctx[k]
		if typ == "" || v == "" {
			continue
		}
		if !isURI(v) {
			v = p.txPrefix + escapePath(v)
		}
		list = append(list, transaction{Type: typ, BizTransaction: v})
	}
	return list
}

func encode(e *event, h *canon) ([]byte, error) {
	h.extensions = e.extensions()
	e.EventID = eventID(e, h)
	var d document
	d.Context = []any{epcisContext, map[string]string{"scangw": Namespace}}
	d.Type, d.SchemaVersion, d.CreationDate = "EPCISDocument", "2.0", e.EventTime
	d.Body.EventList = []*event{e}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "&" and "<" are CSET 82 characters of serials
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// unit is a GS1 identifier: its form in the event and its canonical
// Digital Link for the hash; a class is counted, not listed.
type unit struct {
	epc, dl string
	class   bool
}

// scanUnit is what a scan's fields identify, as rules.Judge named them;
// false when no GS1 key.
func (p *plan) scanUnit(f map[string]string) (unit, bool, error) {
	gtin, serial, sscc, lot := f["gtin"], f["serial"], f["sscc"], f["lot"]
	switch {
	case gtin != "" && serial != "":
		u, err := p.sgtin(gtin, serial)
		return u, true, err
	case sscc != "":
		u, err := p.sscc(sscc)
		return u, true, err
	case gtin != "":
		u, err := p.gtinClass(gtin, lot)
		return u, true, err
	}
	return unit{}, false, nil
}

// keyUnit is the unit a seen-serial index key names: "gs1:(00)<SSCC>" or
// "gs1:(01)<GTIN>(21)<serial>", never a class; false for other schemes.
func (p *plan) keyUnit(key string) (unit, bool, error) {
	if rest, ok := strings.CutPrefix(key, "gs1:(00)"); ok {
		u, err := p.sscc(rest)
		return u, true, err
	}
	if rest, ok := strings.CutPrefix(key, "gs1:(01)"); ok {
		gtin, serial, ok := strings.Cut(rest, "(21)")
		if !ok {
			return unit{}, false, fmt.Errorf("unit %q: no serial", key)
		}
		u, err := p.sgtin(gtin, serial)
		return u, true, err
	}
	if strings.HasPrefix(key, "gs1:") {
		return unit{}, false, fmt.Errorf("unit %q: neither an SGTIN nor an SSCC", key)
	}
	return unit{}, false, nil
}

func (p *plan) sgtin(gtin, serial string) (unit, error) {
	if len(gtin) != 14 {
		return unit{}, fmt.Errorf("GTIN %q: not 14 digits", gtin)
	}
	dl, err := checkedDL(&gs1.Result{Elements: []gs1.Element{{AI: "01", Value: gtin}, {AI: "21", Value: serial}}})
	if err != nil {
		return unit{}, fmt.Errorf("GTIN %q serial %q: %w", gtin, serial, err)
	}
	if p.c.EPCForm != EPCFormURN {
		return unit{epc: dl, dl: dl}, nil
	}
	cp, ref, err := p.split(gtin)
	if err != nil {
		return unit{}, err
	}
	return unit{epc: "urn:epc:id:sgtin:" + cp + "." + ref + "." + escapeURN(serial), dl: dl}, nil
}

func (p *plan) sscc(sscc string) (unit, error) {
	dl, err := checkedDL(&gs1.Result{Elements: []gs1.Element{{AI: "00", Value: sscc}}})
	if err != nil {
		return unit{}, fmt.Errorf("SSCC %q: %w", sscc, err)
	}
	if p.c.EPCForm != EPCFormURN {
		return unit{epc: dl, dl: dl}, nil
	}
	cp, ref, err := p.split(sscc)
	if err != nil {
		return unit{}, err
	}
	return unit{epc: "urn:epc:id:sscc:" + cp + "." + ref, dl: dl}, nil
}

func (p *plan) gtinClass(gtin, lot string) (unit, error) {
	if len(gtin) != 14 {
		return unit{}, fmt.Errorf("GTIN %q: not 14 digits", gtin)
	}
	r := &gs1.Result{Elements: []gs1.Element{{AI: "01", Value: gtin}}}
	if lot != "" {
		r.Elements = append(r.Elements, gs1.Element{AI: "10", Value: lot})
	}
	dl, err := checkedDL(r)
	if err != nil {
		return unit{}, fmt.Errorf("GTIN %q lot %q: %w", gtin, lot, err)
	}
	if p.c.EPCForm != EPCFormURN {
		return unit{epc: dl, dl: dl, class: true}, nil
	}
	cp, ref, err := p.split(gtin)
	if err != nil {
		return unit{}, err
	}
	if lot == "" {
		return unit{epc: "urn:epc:idpat:sgtin:" + cp + "." + ref + ".*", dl: dl, class: true}, nil
	}
	return unit{epc: "urn:epc:class:lgtin:" + cp + "." + ref + "." + escapeURN(lot), dl: dl, class: true}, nil
}

// split cuts a checked GTIN-14 or SSCC into the two numbers of its EPC
// URI: the GS1 Company Prefix, and the indicator (extension) digit
// followed by the rest without the check digit.
func (p *plan) split(key string) (cp, ref string, err error) {
	digits := key[1:]
	n, best := 0, -1
	for k, l := range p.c.CompanyPrefixLength {
		if strings.HasPrefix(digits, k) && len(k) > best {
			n, best = l, len(k)
		}
	}
	if best < 0 {
		return "", "", fmt.Errorf("%s: no company_prefix_length entry matches", key)
	}
	return digits[:n], key[:1] + digits[n:len(digits)-1], nil
}

// isURI says whether a context value is a URI already (an ERP's own, a
// GS1 Digital Link of a GDTI) rather than a bare document number.
func isURI(v string) bool {
	if strings.ContainsAny(v, " \t\"<>\\^`{|}") {
		return false
	}
	u, err := url.Parse(v)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "urn":
		return u.Opaque != ""
	case "http", "https":
		return u.Host != "" && !strings.Contains(u.Hostname(), ":") // no IPv6 literals
	}
	return false
}

// escapePath percent-encodes what may not stand in a URI path segment
// (the document number's "/" included).
func escapePath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~!$&'()*+,;=:@", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
