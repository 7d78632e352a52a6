// Package serials makes the serial numbers a station assigns to units that
// arrive without one: a scheme's template turns a counter value into a
// serial, and a counter hands out each value at most once.
//
// # Schemes and templates
//
// A scheme is a template plus a counter. The template is fixed text and
// placeholders in braces:
//
//	{site} {gateway} {station}   the ids (1 to 64 of [A-Za-z0-9._-])
//	{yy} {yyyy} {mm} {dd} {ddd}  the date of issue (ddd: day of the year)
//	{gtin} {lot} {expiry}        the product, from the read or the context
//	{seq:N}                      the counter, zero-padded to N digits (1 to 18)
//	{check:ALG}                  a check character (station/checkdigit)
//	{{ }}                        literal braces
//
// for example {site}-{yy}{ddd}-{seq:6}{check:mod37-2} or {gtin}.{seq:8}.
// Exactly one {seq:N} is required. A serial is carried in GS1 AI (21),
// so by default the template's text and every rendered serial must be GS1
// CSET 82 and at most 20 characters; [ParseOptions] widens both for
// sites whose serials never go into a GS1 element string.
//
// The check character ends the template. It is computed over the serial's
// characters before it that the algorithm's alphabet holds: the counter
// digits always, separators and letters only where the algorithm takes
// them (mod37-2 skips '-' and lower case, luhn covers only the digits of
// SN{seq:9}{check:luhn}). Without that rule no numeric algorithm could
// follow a prefix, and the fixed text, which the check would skip, is
// compared exactly by [Template.Check] anyway. mod43 is refused: its
// check character may be a space or '$', which no serial may hold.
//
// # Free and granted counters
//
// Two gateways must never make the same serial. A free scheme gets that
// from its template: the gateway or station id is part of the serial, so
// its [Counter] simply runs from a configured start to the largest
// number the {seq:N} width holds. A granted scheme has no such id in it;
// the central system hands each gateway disjoint blocks of numbers
// (command grant_serials, [ParseGrant]) and the gateway never issues a
// number outside them, lowest block first.
//
// # Why Issue is pure
//
// [Counter.Issue] returns the number and the advanced counter and changes
// nothing. The caller commits the advanced counter and the assignment
// event in one buffer transaction, and only then prints the label. A
// power cut before the commit loses nothing; one after it may leave a
// number assigned but never printed (a gap, which a re-print repairs),
// but a number is never issued twice, because the counter that was
// committed is the one that is used next.
package serials
