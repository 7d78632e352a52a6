package wire

// The data of the events a station's workflow makes: what a document
// read did to the context, an order's progress, a closed aggregation, an
// assigned serial. Each is buffered on EventStream and numbered in the
// same seq as scans.

// Document kinds: what a document barcode names. Each sets the context
// key of the same name, except the control codes.
const (
	DocOrder    = "order"    // a purchase order: receiving against it
	DocPick     = "pick"     // a sales order / pick list
	DocShipment = "shipment" // a shipment's SSCC (AI 00)
	DocLocation = "location" // a dock or location label (GLN, AI 414 / 254)
	DocOperator = "operator" // an operator's badge
	DocParent   = "parent"   // the parent of a pack or build
	DocClose    = "close"    // a control code: close what is open
	DocCancel   = "cancel"   // a control code: drop what is open
	DocSerial   = "new_serial"
)

// DocumentKinds lists the document kinds.
var DocumentKinds = []string{DocOrder, DocPick, DocShipment, DocLocation, DocOperator, DocParent, DocClose, DocCancel, DocSerial}

// Causes of a context change (ContextData.Cause).
const (
	CauseCommand  = "command"  // a downlink command or a reload
	CauseDocument = "document" // a document barcode
	CauseIdle     = "idle"     // the context timed out
)

// Document is the read that changed a context.
type Document struct {
	Kind    string `json:"kind"`  // one of DocumentKinds
	Value   string `json:"value"` // what it names ("" for control codes)
	Scanner string `json:"scanner"`
	Raw     string `json:"raw"`
}

// Order statuses (OrderData.Status).
const (
	OrderProgress = "progress"
	OrderComplete = "complete"
)

// Outcomes of one scan against an order (OrderData.Last.Outcome).
const (
	OrderCounted     = "counted"
	OrderRepeat      = "repeat"       // the same unit again: not counted twice
	OrderOver        = "over"         // its line is met already
	OrderUnexpected  = "unexpected"   // a product the order does not list
	OrderWrongSerial = "wrong_serial" // a listed product, a serial the ASN does not name
)

// OrderData is the data of an OrderType event.
type OrderData struct {
	Seq     uint64 `json:"seq"`
	Epoch   string `json:"epoch"`
	Station string `json:"station"`
	Mode    string `json:"mode"`
	Order   string `json:"order"`
	Status  string `json:"status"` // OrderProgress or OrderComplete
	// Last is the scan that changed the progress.
	Last        OrderScan   `json:"last"`
	Lines       []OrderLine `json:"lines"`
	Counted     int         `json:"counted"`
	Remaining   int         `json:"remaining"`
	Over        int         `json:"over"`
	Unexpected  int         `json:"unexpected"`
	WrongSerial int         `json:"wrong_serial"`
	Operator    string      `json:"operator,omitempty"`
	ClockSynced bool        `json:"clock_synced"`
}

// OrderScan is the scan an order event reports on.
type OrderScan struct {
	Scan    string `json:"scan"` // the scan event's id
	Unit    string `json:"unit,omitempty"`
	Product string `json:"product,omitempty"`
	Outcome string `json:"outcome"`
}

// OrderLine is one expected line and its progress.
type OrderLine struct {
	Product  string `json:"product"` // a GTIN-14 or a SKU
	Expected int    `json:"expected"`
	Counted  int    `json:"counted"`
}

// Aggregation actions (AggregationData.Action), as EPCIS names them.
const (
	AggAdd    = "add"
	AggDelete = "delete"
)

// What closed an aggregation (AggregationData.ClosedBy).
const (
	ClosedByParent  = "parent"  // the parent scanned again
	ClosedByCode    = "close"   // a close control code
	ClosedByCount   = "count"   // the configured child count reached
	ClosedByCommand = "command" // a downlink command
)

// AggregationData is the data of an AggregationType event: one closed
// pack, build or unpack.
type AggregationData struct {
	Seq     uint64 `json:"seq"`
	Epoch   string `json:"epoch"`
	Station string `json:"station"`
	Mode    string `json:"mode"`
	Action  string `json:"action"`
	// Parent and Children are units as the seen-serial index names them
	// ("gs1:(00)<SSCC>", "gs1:(01)<GTIN>(21)<serial>", ...), the
	// children in scan order.
	Parent      string            `json:"parent"`
	Children    []string          `json:"children"`
	ClosedBy    string            `json:"closed_by"`
	Operator    string            `json:"operator,omitempty"`
	Context     map[string]string `json:"context,omitempty"`
	ClockSynced bool              `json:"clock_synced"`
}

// Assignment statuses (AssignedData.Status).
const (
	AssignIssued        = "assigned"       // a new serial, committed before its label prints
	AssignReprint       = "reprint"        // a label printed again; the counter did not move
	AssignVerified      = "verified"       // the operator scanned the printed label: it is that serial
	AssignVerifyFailed  = "verify_failed"  // the label scanned is another serial
	AssignVerifyTimeout = "verify_timeout" // no verify read came in time
)

// Triggers of an assignment (AssignedData.Trigger).
const (
	TriggerRead    = "read"    // a "new serial" control code, or a product read in mode assign
	TriggerCommand = "command" // a downlink command
	TriggerLocal   = "local"   // `scangw serial next` at the gateway
)

// AssignedData is the data of an AssignedType event.
type AssignedData struct {
	Seq     uint64 `json:"seq"`
	Epoch   string `json:"epoch"`
	Station string `json:"station"`
	Status  string `json:"status"`
	Scheme  string `json:"scheme"`
	Serial  string `json:"serial"`
	// Counter is the scheme's counter value the serial was made from.
	Counter  uint64            `json:"counter"`
	GTIN     string            `json:"gtin,omitempty"`
	Lot      string            `json:"lot,omitempty"`
	Expiry   string            `json:"expiry,omitempty"` // YYMMDD
	Trigger  string            `json:"trigger"`
	Printer  string            `json:"printer,omitempty"`
	Operator string            `json:"operator,omitempty"`
	Context  map[string]string `json:"context,omitempty"`
	// Assigned is the id of the AssignIssued event a reprint or verify
	// is about.
	Assigned    string   `json:"assigned,omitempty"`
	Reasons     []Reason `json:"reasons,omitempty"`
	ClockSynced bool     `json:"clock_synced"`
}
