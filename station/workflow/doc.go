// Package workflow is a station's dock workflow as a pure state machine:
// document barcodes that set the context, progress against the order in
// context, and packing and building (aggregation). Step takes the state,
// one input and a read-only view of the gateway's index, and returns what
// to record: the next state, context, order and aggregation events, and
// index writes. It does no I/O and reads no clock, so the caller stores
// an Outcome's events, its Next state and its Writes in one transaction
// (also when it carries no event: a cancel changes only state and index),
// and a power cut leaves the station where the last commit put it.
//
// # Documents
//
// A read is a document when Classify says so: the config's patterns
// first (the station's, then the gateway's: Config.Documents), then the
// rule sets' (Rules.Documents), then the built-in field patterns, wherever
// they are listed (a Pattern with no Match, BuiltinPatterns):
//
//   - shipment: a GS1 read whose fields carry an SSCC (AI 00); the value
//     is the 18-digit SSCC;
//   - location: a GS1 read that is a GLN (AI 414, check digit right),
//     optionally with its extension (AI 254), as an element string, in
//     brackets or as a Digital Link; the value is the GLN, or
//     "<GLN>(254)<extension>".
//
// A pattern's expression must match the whole read (NewPattern anchors
// it). A document is not a scan: the caller stores no scan event for it.
// Each document read that takes effect is one context event (cause
// document, with the read); it is answered with Config.DocumentSignal
// (good by default), warn when it found something to warn of, bad when
// it was refused (then nothing changed and no event is made; Findings
// say why).
//
//   - order, pick, shipment, location, operator, and any other kind set
//     the context key of their pattern (default: the kind) to the value,
//     or remove the key when the value is empty. At most 16 keys, values
//     up to 256 bytes, as for a set_context command.
//   - close closes the open aggregation; with none open it closes the
//     order: removes "order" (else "pick") from the context.
//   - cancel drops the open aggregation (no aggregation event; its
//     children are free again); with none open it removes the key the
//     last document set.
//   - parent opens an aggregation with that parent in modes pack, build
//     and unpack (the read's unit key, else the value), or closes the
//     open one when it is the same parent. It does not set a context key.
//   - new_serial is the serial assigner's: Step reports it as a document
//     and does nothing else.
//
// In modes pack and unpack a shipment read with a unit key is not a
// document but a unit like any other: an SSCC is then a pallet's parent
// (or a child, for a pallet of pallets).
//
// # Idle
//
// With Config.Idle set, any input whose Time is more than Idle after
// State.Touched (the last read or command while the context was not
// empty) first clears the context (a context event with cause idle),
// then is handled. The order's progress stays in the index. An open
// aggregation is not dropped: it is work that needs a close or a cancel.
//
// # Orders
//
// While the context names an order ("order", else "pick") that Rules.Order
// knows, every product read the rules did not reject, and that no other
// check here refused, is judged against it and reported as an order event:
//
//   - counted: a line of its product is not met yet (the first such line);
//   - repeat: the same unit was judged for this order at this station
//     before (warn "order.repeat"): not counted twice, also after a reboot;
//   - wrong_serial: its product's line lists serials and the order's
//     Listed says this one is not among them (policy Order.Policy);
//   - over: every line of its product is met (policy Config.OverScan of
//     the mode);
//   - unexpected: no line names its product (policy Config.Unexpected of
//     the mode).
//
// A policy is "warn" (the default) or "reject"; a rejected scan is not
// remembered, so scanning it again is judged again. The over, unexpected
// and wrong_serial counts count the scans so judged, rejected ones too.
// The event with which every line became met has status complete, once;
// every other has status progress. A read without a unit key (a bare
// GTIN) counts by product, with no repeat detection. The reads that open
// or close an aggregation are its parent, not goods of the order.
// Progress is kept per station and order in the index: an order scanned
// again later resumes where it was. State.Order mirrors the order in
// context for display.
//
// # Aggregation
//
// In modes pack, build and unpack, the first unit read while nothing is
// open is the parent (a pallet's SSCC, a case, a bike's frame serial);
// the next ones are its children, in scan order. It closes when the
// parent is read again, on a close code, when Config.ChildCount children
// are in (pack and build), or on a CloseAggregation command; the close is
// one aggregation event (action add for pack and build, delete for
// unpack). One closed with no children makes no event, gets the warning
// "aggregation.empty", and is closed all the same.
//
// The rule sets may require of a parent product's children (a pallet of
// GTIN X takes 12 cases of GTIN Y: Rules.Children). When a pack or build
// opens, the parent read's product (its gtin field, else its sku) is
// looked up and the requirement kept in the open aggregation
// (Aggregation.Require), so a rule set loaded mid-pack, or a reboot,
// does not change it; unpack has none. With Products, a child must be
// one of them, and of Config.ChildProducts too (both apply). With Count,
// the aggregation closes by itself at Count children (instead of at
// Config.ChildCount), and a close before that, by the parent, a close
// code or CloseAggregation, is refused: the reject finding
// "aggregation.count" ("12 children required, 7 scanned"), or for the
// command ErrTooFewChildren; it stays open. A cancel still drops it. A
// parent requiring more children than MaxChildren does not open
// ("aggregation.count"): it could never close.
//
// A unit is never in two parents. A child is refused ("reject"):
//   - while it is being packed at any station ("aggregation.in_open"),
//     or packed in a closed parent until an unpack removes it
//     ("aggregation.packed");
//   - when the parent is inside it ("aggregation.cycle");
//   - when Config.ChildProducts or the parent's required products name
//     products and its is not one ("aggregation.child_product"), or the
//     aggregation has MaxChildren ("aggregation.full");
//   - in unpack, when it is not in that parent ("aggregation.not_in_parent");
//   - when the read names no unit ("aggregation.no_unit").
//
// The same child again in one open aggregation is not added twice
// (warning "aggregation.repeat"). A rejected scan is neither parent nor
// child. Children taken in, but not yet closed, are marked open at their
// station in the index, so no other station can take them meanwhile; a
// cancel frees them. An open mark of this station that its open
// aggregation does not list (its state was lost) is stale and ignored.
// The mode cannot change while an aggregation is open (ErrAggregationOpen):
// close or cancel it first.
//
// # Commands
//
// SetMode and SetContext take the limits of the downlink's set_mode and
// set_context and make a context event with cause command;
// CloseAggregation and CancelAggregation act on the open aggregation
// (ErrNothingOpen when none is; ErrTooFewChildren for a close short of
// the parent's required count). A refused command is Outcome.Err, an
// errors.Is-able sentinel, and changes nothing.
//
// # Index
//
// The index is the gateway's durable key/value map that the caller keeps
// (all keys start with IndexPrefix):
//
//	OrderKey(station, order)          JSON of the order's Progress at the station
//	CountedKey(station, order, unit)  the outcome ("counted", "over", ...) the unit got
//	ChildKey(unit)                    JSON of its Link: parent, station, open
//
// Order names are path-escaped; units and stations are not (their
// syntax has no slash at the places it would matter).
package workflow
