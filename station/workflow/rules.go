package workflow

import "regexp"

// What the workflow needs from the rule sets (station/rules implements it
// for the sets in use): document patterns, orders' expected lines, and
// what a parent product's children must be.
type Rules interface {
	// Documents are the document patterns the rule sets carry, tried
	// after the config's.
	Documents() []Pattern
	// Order returns the expected lines of an order (an ASN or a purchase
	// order's lines); ok is false when no rule set in use names it.
	Order(name string) (o Order, ok bool)
	// Children returns what the children of a pack or build whose parent
	// is of parentProduct (a GTIN-14 or SKU) must be; ok is false when no
	// rule set in use says. Products is shared: callers must not modify it.
	Children(parentProduct string) (c Children, ok bool)
}

// Children is what a parent product requires of its children.
type Children struct {
	// Products, when not empty, are the products (GTIN-14 or SKU) a
	// child may be.
	Products []string `json:"products,omitempty"`
	// Count is how many children the parent takes: it closes by itself
	// at Count, and cannot be closed before; 0: any number.
	Count int `json:"count,omitempty"`
}

// Pattern classifies a read as a document: a read that Match matches as a
// whole is one of Kind (a wire.DocumentKinds). Its value is the
// sub-match named "value" if the expression has one, else the whole read.
// Key is the context key the value is set under ("" for Kind).
type Pattern struct {
	Kind  string
	Match *regexp.Regexp
	Key   string
}

// Order is an order's expected lines.
type Order struct {
	Name string
	// Policy is what an unlisted unit gets ("warn" or "reject"), as the
	// rule set's expected entries say.
	Policy string
	Lines  []Line
	// Listed reports whether the order's ASN names this unit of
	// product (a line with Serials); nil when no line lists serials.
	Listed func(product, serial string) bool
}

// Line is one expected product and how many of it.
type Line struct {
	Product  string // a GTIN-14 or a SKU, as scans' fields name it
	Quantity int
	Serials  bool // the ASN lists the exact serials of this line
}
