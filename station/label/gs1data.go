package label

import (
	"errors"
	"fmt"
	"strings"

	"github.com/scangw/scangw/station/gs1"
)

// element is one AI of the label's GS1 data.
type element struct {
	ai, value string
	// fixed marks an AI of predefined length, which needs no FNC1 after
	// it (GS1 General Specifications figure 7.8.5-2).
	fixed bool
}

// elements builds the label's GS1 data from v in the order (01), (17),
// (10), (21): the fixed-length AIs first, so only (10) can need a
// separating FNC1, and checks it.
func elements(v Values) ([]element, error) {
	var els []element
	for _, el := range []element{
		{"01", gtin14(v.GTIN), true},
		{"17", v.Expiry, true},
		{"10", v.Lot, false},
		{"21", v.Serial, false},
	} {
		if el.value != "" {
			els = append(els, el)
		}
	}
	if len(els) == 0 {
		return nil, errors.New("label: no GS1 data: GTIN, expiry, lot and serial are all empty")
	}
	if _, err := gs1.Parse(elementString(els)); err != nil {
		return nil, fmt.Errorf("label: GS1 data %s: %w", bracketed(els), err)
	}
	return els, nil
}

// gtin14 pads a GTIN-8, -12 or -13 to the 14 digits of (01); anything
// else is left for gs1.Parse to judge.
func gtin14(g string) string {
	switch len(g) {
	case 8, 12, 13:
		for i := 0; i < len(g); i++ {
			if g[i] < '0' || g[i] > '9' {
				return g
			}
		}
		return strings.Repeat("0", 14-len(g)) + g
	}
	return g
}

// elementString is the data as a scanner transmits it: GS for each
// separating FNC1.
func elementString(els []element) string {
	var b strings.Builder
	for i, el := range els {
		b.WriteString(el.ai)
		b.WriteString(el.value)
		if !el.fixed && i < len(els)-1 {
			b.WriteByte(gs)
		}
	}
	return b.String()
}

// bracketed is the human-readable interpretation, "(01)…(21)…".
func bracketed(els []element) string {
	var b strings.Builder
	for _, el := range els {
		b.WriteString("(" + el.ai + ")" + el.value)
	}
	return b.String()
}
