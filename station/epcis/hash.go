package epcis

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// The EPCIS Event Hash ID (CBV 2.0 section 8.9; reference implementation
// github.com/RalphTro/epcis-event-hash-generator) names an event by the
// SHA-256 of a canonical "pre-hash" string of its content: the fields in
// a fixed order as key=value pairs with no separators, lists sorted,
// times in UTC with milliseconds, CBV terms as their URIs, identifiers
// as canonical GS1 Digital Links on id.gs1.org, user extensions as
// {namespace}name=value, sorted, at the end. eventID itself is left out.
//
// Only the fields this package writes are handled. Extension values are
// hashed as written; the reference implementation also trims a string
// that reads as a number ("007" as "7"), so a station or scanner id of
// only digits with a leading zero hashes differently there.

// canon holds the canonical forms of an event's identifiers and time,
// which the event itself may write otherwise (EPC URIs, local time).
type canon struct {
	utc                     string
	parent                  string
	epcs, children, classes []string
	readPoint, bizLocation  string
	extensions              []string // {namespace}name=value
}

const cbvBase = "https://ref.gs1.org/cbv/"

func eventID(e *event, h *canon) string {
	sum := sha256.Sum256([]byte(preHash(e, h)))
	return "ni:///sha-256;" + hex.EncodeToString(sum[:]) + "?ver=CBV2.0"
}

func preHash(e *event, h *canon) string {
	var b strings.Builder
	kv := func(k, v string) {
		if v != "" {
			b.WriteString(k + "=" + v)
		}
	}
	list := func(name string, items []string) {
		if len(items) > 0 {
			b.WriteString(name)
			b.WriteString(strings.Join(slices.Sorted(slices.Values(items)), ""))
		}
	}
	prefixed := func(prefix string, vs []string) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = prefix + v
		}
		return out
	}
	kv("eventType", e.Type)
	kv("eventTime", h.utc)
	kv("eventTimeZoneOffset", e.EventTimeZoneOffset)
	list("epcList", prefixed("epc=", h.epcs))
	kv("parentID", h.parent)
	list("childEPCs", prefixed("epc=", h.children))
	// Every class of this package is counted once, with no unit of measure.
	list("quantityList", prefixed("quantityElementepcClass=", suffixed(h.classes, "quantity=1")))
	kv("action", e.Action)
	kv("bizStep", cbvURI("BizStep-", e.BizStep))
	kv("disposition", cbvURI("Disp-", e.Disposition))
	if h.readPoint != "" {
		b.WriteString("readPointid=" + h.readPoint)
	}
	if h.bizLocation != "" {
		b.WriteString("bizLocationid=" + h.bizLocation)
	}
	txs := make([]string, len(e.BizTransactionList))
	for i, t := range e.BizTransactionList {
		// The type goes first (the reference implementation, CBV 2.0's
		// examples), then the list is sorted whole.
		if t.Type != "" {
			txs[i] = "type=" + cbvURI("BTT-", t.Type)
		}
		txs[i] += "bizTransaction=" + t.BizTransaction
	}
	list("bizTransactionList", txs)
	b.WriteString(strings.Join(slices.Sorted(slices.Values(h.extensions)), ""))
	return b.String()
}

func suffixed(vs []string, suffix string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v + suffix
	}
	return out
}

// cbvURI expands a bare CBV term to its Web URI; a URI stays as it is.
func cbvURI(kind, v string) string {
	if v == "" || strings.Contains(v, ":") {
		return v
	}
	return cbvBase + kind + v
}
