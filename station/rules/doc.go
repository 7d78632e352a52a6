// Package rules is the gateway's rule engine: it judges every scan against
// rule sets it keeps locally, so that validation needs no network, and it
// decides which rule sets to trust.
//
// # Rule sets
//
// A rule set is JSON, issued by the central system and versioned (the
// comments below explain; JSON has none):
//
//	{
//	  "schema": 1,                        // format version; others are refused
//	  "version": 42,                      // per scope, strictly increasing
//	  "issued": "2026-07-01T06:00:00Z",   // RFC 3339
//	  "scope": "site",                    // "site" or "gateway"
//	  "site": "dc-east",                  // optional: refused by other sites
//	  "gateway": "gw-01",                 // required for scope "gateway"
//	  "unknown_product": "warn",          // a product with no rule: allow (default), warn, reject
//	  "products": [{
//	    "gtin": "09506000134352",         // or "sku": see Products
//	    "serial": {"pattern": "[A-Z0-9]+", "min": 6, "max": 20,
//	               "charset": "0123456789ABCDEFGHJKLMNPRSTUVWXYZ", "check": "luhn"},
//	    "require": ["serial", "lot", "expiry"],
//	    "expiry": {"reject_expired": true, "warn_within_days": 30}
//	  }, {
//	    "gtin": "09506000134406",         // a case: packed with 12 units of one GTIN
//	    "children": {"products": ["09506000134352"], "count": 12}
//	  }],
//	  "deny": [
//	    {"gtin": "09506000134352", "serials": ["A1", "A2"], "reason": "recalled", "message": "Recall R-14"},
//	    {"gtin": "09506000134352", "lot": "L2309", "reason": "recalled"},
//	    {"serial": "SN-77", "reason": "stolen"}
//	  ],
//	  "duplicates": {"receive": "reject", "ship": "warn", "ship_requires_received": "warn"},
//	  "expected": [
//	    {"order": "PO-1234", "policy": "reject", "gtin": "09506000134352", "serials": ["A1", "A2"]},
//	    {"order": "PO-1234", "sku": "PUMP-200", "quantity": 12}
//	  ],
//	  "documents": [
//	    {"kind": "order", "pattern": "PO-[0-9]{4,8}"},
//	    {"kind": "operator", "pattern": "BADGE:(?P<value>[0-9]+)"},
//	    {"kind": "location", "pattern": "DOCK-[0-9]{2}", "key": "dock"},
//	    {"kind": "close", "pattern": "#CLOSE"}
//	  ],
//	  "shipped": [
//	    {"customer": "ACME", "gtin": "09506000134352", "serials": ["A1", "A2"]},
//	    {"gtin": "09506000134352", "serials": ["A1", "A2", "A3"], "policy": "reject",
//	     "reason": "counterfeit", "message": "not a serial we made"}
//	  ],
//	  "returns": {"already_returned": "reject"}
//	}
//
// testdata/example.json is a complete example; a test loads it. Unknown
// fields are refused (CodeBadRule): a misspelt "requires" must not turn a
// rule off in silence. A change of meaning needs a new "schema".
//
// Products are named by "gtin" (a GTIN-8, -12, -13 or -14 with a correct
// check digit; kept as the 14 digits AI (01) carries) or by "sku": the
// LIC followed by the product number for HIBC ("+A99912345…" is LIC A999,
// PCN 1234: "A9991234"), or, for plain serials, what the station's
// context names as "sku" (SetContext {"sku": "PUMP-200"}). "serial"
// checks the serial number (AI (21), the HIBC serial, or the whole plain
// scan): "pattern" is an RE2 regular expression that must match the whole
// serial; "min" and "max" count characters (max 0: no limit); "charset"
// lists every allowed character; "check" names a check character
// algorithm of package checkdigit: gs1, luhn, mod11-2, mod37-2, mod43,
// gs1-pair. "require" lists fields the scan must carry. "expiry" applies
// to AI (17) (or (7003)) and the HIBC expiry date.
//
// "children" says what a pack or build whose parent is a unit of the
// product must take (Engine.Children; see package workflow): "products"
// lists the products a child may be (at most 256; a GTIN as the 14
// digits scans carry, so 14 digits are a GTIN-14 with a correct check
// digit, a GTIN-8, -12 or -13 is refused with its GTIN-14, and anything
// else is a SKU), and "count" (1 to 5000) how many children it takes: it
// closes by itself at that many, and a close before is refused
// ("aggregation.count"). Give either or both. The station config's
// child_products applies as well; the count replaces its child_count for
// that parent. The requirement is taken when the aggregation opens: a set
// loaded mid-pack applies to the next one. A parent is named by the
// product of its read, so an SSCC pallet has none.
//
// A deny entry names a product ("gtin" or "sku") and/or "serial" /
// "serials" and "lot" / "lots" (a lot needs its product, as lot numbers
// are only unique within one); an entry with only a product denies all of
// it, one with only serials denies them for any product. "reason" is a code
// ([a-z][a-z0-9_]*, such as recalled, counterfeit, stolen) that becomes
// the reason code "denied.<reason>"; "message" is for the operator. List
// many serials in one entry: a million of them then cost about 15 MB of
// JSON.
//
// "duplicates" sets, per station mode that moves units (receive, ship,
// return, transfer, count), what to do when a unit's last recorded
// movement at this gateway was in the same mode ("duplicate"), and, with
// "ship_requires_received", what to do when a unit is shipped that has no
// recorded movement here or was last shipped ("not_received"). A policy
// is "allow" (the default: no check), "warn" or "reject". The modes pack,
// build, unpack and assign move nothing (a case packed on a pallet is
// still where it was received), so they have no duplicate policy and
// their scans are not recorded in the seen-serial index.
//
// "expected" lists the units an order (an advance ship notice, or a
// purchase order's lines) brings: while a station's context names that
// order (SetContext {"order": "PO-1234"}), a unit not listed gets
// "unexpected_serial" with the order's policy ("warn" by default). An
// entry with a product and no serials expects units of it: "quantity"
// (at least 1) of them, or any number without one; an entry with
// "serials" expects those units, "quantity" of them if given (at most
// as many as it lists), else all. Entries of one order share one policy;
// the entries of one product add up to one line (Engine.Order), and must
// all list serials or all not. A line's quantity never exceeds the
// distinct serials it lists, and is 0 ("any number") when an entry of it
// has neither serials nor a quantity. Serials listed without a product
// make a line of product "": units of any product.
//
// "documents" lists patterns that classify a read as a document rather
// than a product (Engine.Documents; the station's workflow tries the
// config's patterns first, then these). "kind" is one of wire.DocumentKinds
// (order, pick, shipment, location, operator, parent, close, cancel,
// new_serial); "pattern" is an RE2 expression that must match the whole
// read, and its group named "value", if it has one, is the document's
// value (no other group may be named: a misspelt "value" would silently
// make the whole read the value); "key" is the context key the value is
// set under ([a-z][a-z0-9_]{0,63}; the kind's own by default; none for
// close and cancel). At most 256 patterns.
//
// "shipped" lists the units that went out, so that a return is checked
// at the dock: "the unit coming back is the one that went out". Each
// entry names a product ("gtin" or "sku"), its "serials", and optionally
// a "customer" and/or an "order". While a station in mode return has a
// context naming that customer (key "customer") or that order (key
// "order"), or always for an entry that names neither, a returned unit
// of the product whose serial the list does not name gets the entry's
// "reason" (a code as deny's, used as the scan's reason code as it is:
// "not_shipped", the default, or say "counterfeit"; never one of the
// engine's own codes) with its "policy" ("reject", the default, or
// "warn") and "message". The entries of one customer (or one order, or
// the always-list) and product make one list and must agree on policy,
// reason and message; an entry naming both a customer and an order is
// on both their lists (and costs its serials twice). A unit without a
// serial, or of a product no list in scope names, is not checked here.
//
// "returns" sets "already_returned": what a unit gets in mode return
// whose last recorded movement here was a return ("already_returned").
// It is "reject" by default in a set with "shipped" or "returns", and
// "allow" in one without them, so sets written before returns were
// checked judge as they did. It replaces the return mode's "duplicate"
// finding rather than adding to it (the stricter of the policies of
// both and of every set in use applies), so a unit returned twice is
// reported once.
//
// # Verdicts and reasons
//
// A scan is rejected if any finding says reject, else a warning if any
// says warn, else accepted. Each finding is a station.Reason with a
// stable code: "gs1.<code>" and "hibc.<code>" for syntax errors (the
// parsers' codes; nothing else is judged then), the Reason* constants,
// "denied.<reason>", and the reasons shipped lists configure. A scan's rules_version names the sets that
// judged it ("site:42", "site:42,gateway:7") or "none".
//
// Engine implements workflow.Rules for the sets in use: Documents,
// Order (an order's lines, its policy, and Listed, which asks the
// order's hashed keys whether the ASN names a unit), and Children (a
// parent product's requirement of its children, built at Load).
//
// Scans are read as `scangw inspect` reads them (GS1 element string,
// Digital Link, HIBC, or plain). A unit is identified in the seen-serial
// index by a key that must stay stable, as the buffer persists it:
// "gs1:(01)<GTIN-14>(21)<serial>", "gs1:(00)<SSCC>", "hibc:<LIC><PCN>/<serial>"
// or "plain:<scan>". A scan without one (a bare GTIN, a standalone HIBC
// secondary) skips the duplicate checks.
//
// # Trust
//
// A rule set travels in a signed envelope:
//
//	{"payload": "<base64 of the rule-set JSON>", "sig": "<base64 Ed25519 signature of those bytes>", "key": "<base64 public key>"}
//
// The gateway's config lists the Ed25519 public keys it trusts (base64,
// ParsePublicKey); a set must be signed by one of them. "key" only says
// which one to try first. Sign makes envelopes (`scangw rules sign`). A
// gateway may be configured to accept unsigned sets only when it trusts no
// key at all (Options.AllowUnsigned): one gateway never mixes both. The
// payload is parsed only after its signature verified. A set naming
// another site or gateway is refused (CodeWrongTarget), so a set signed
// for one gateway cannot be replayed on another's topic; one not newer
// than the set in use for its scope is refused (CodeNotNewer), so an old
// set cannot be replayed at all. Refusals
// are typed (*Error, Errors) with a Code for logs, metrics and downlink
// replies; bad rules name their path, such as
// "products[3].serial.pattern".
//
// A site set and a gateway set may both be in use: both apply, and the
// stricter finding wins, so a gateway set can add rules but never lift a
// site-wide recall. Their document patterns add up (the site's first).
// A parent product's "children" is one rule of it: the gateway set's
// replaces the site set's for the same product whole (a gateway whose
// pallets take 6 cases, not 12), and the site's holds for the others.
// An order is the exception: it is one document, so a gateway set that
// names an order replaces the site set's order of that name whole, for
// judging and for Engine.Order (a corrected ASN must not be intersected
// with the one it corrects).
//
// # Scale
//
// Deny, expected and shipped lists are kept as 64-bit hashes of their
// keys in one sorted slice with a bucket index: 12 bytes a key, about 12
// MiB for a million (a map of strings takes about 84 MiB), and a lookup
// touches two or three cache lines; expected and shipped lists keep only
// the hashes once built, 8 bytes a key. Two keys share a hash with probability 2^-64, so a
// million-entry list denies a good unit by accident about once in 10^13
// scans; the lists are signed, so nobody can pick entries to force it.
// Lists are decoded entry by entry straight into hashes, so loading a
// million-key set needs about its payload plus 12 MiB at its peak.
//
// # Offline
//
// The Engine holds the sets in use behind an atomic pointer: Load swaps a
// new set in whole, and Validate, on any number of goroutines, never
// blocks and never sees half a change. A set that fails any check leaves
// the old one in place. A Loader persists each envelope Load accepted
// (through a StateStore: the buffer's state) and hands it to Restore at
// boot, which checks it again against the configured keys, so a gateway
// that restarts without a network validates with its last good sets.
// With no set at all the engine still checks GS1 and HIBC syntax, so a
// bad check digit is caught from the first boot.
//
// # Clock
//
// A Raspberry Pi has no real-time clock: until NTP synchronised it, its
// time is whatever it saved last. So an expired date rejects a scan only
// when the scan's clock was synchronised (station.Scan.ClockSynced);
// otherwise it is the warning "expired_clock_unsynced". While the clock is
// not synchronised, "now" is never taken earlier than the newest loaded
// set's "issued" time, which is signed and so a trusted lower bound; it
// also places two-digit years (GS1 GenSpecs 7.12). Dates are compared as
// calendar days in Options.Location: a unit is expired the day after its
// expiry date.
package rules
