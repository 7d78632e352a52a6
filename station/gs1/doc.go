// Package gs1 parses GS1 data: the Application Identifier (AI) element
// strings carried by GS1-128, GS1 DataMatrix, GS1 QR Code, GS1 DataBar and
// GS1 DotCode, their human-readable bracketed form, GS1 Digital Link URIs,
// and the bare GTINs of EAN/UPC and ITF-14 symbols.
//
// # Concepts
//
// An element string is a run of AIs, each a 2- to 4-digit prefix that says
// what the data after it means and how it is formatted: (01) a GTIN of 14
// digits, (17) an expiry date YYMMDD, (10) a batch/lot of up to 20
// characters, (21) a serial number. AIs whose length is fixed by their
// first two digits (00, 01-04, 11-20, 31-36, 41: GenSpecs figure 7.8.5-2)
// run straight into the next AI; every other value ends at an FNC1, which
// scanners transmit as the ASCII group separator GS (0x1D), or at the end
// of the data. A symbology identifier such as "]d2" (ISO/IEC 15424) in
// front says which symbol was read and whether it carries GS1 data.
//
// The bracketed form "(01)09506000134352(17)271231(10)ABC" is what people
// write and what is printed under a barcode; "\(" stands for a "(" inside
// a value.
//
// A GS1 Digital Link URI carries the same AIs in an https URI (see
// digitallink.go for the rules), so one QR code can serve a consumer's
// phone and a warehouse scanner.
//
// # The AI table
//
// Every AI, its format and its rules come from GS1's Barcode Syntax
// Dictionary (https://github.com/gs1/gs1-syntax-dictionary), embedded
// verbatim in gs1-syntax-dictionary.txt (Apache-2.0; see NOTICE) and
// parsed when the package loads. For each AI the dictionary gives its
// components (type N digits, X CSET 82, Y CSET 39 or Z CSET 64; fixed or
// variable length; optional trailing parts), the "linters" that check the
// content (check digits, dates, times, GS1 Company Prefix, ISO country and
// currency codes …), and its pairing rules: "req" (the AIs it needs beside
// it, e.g. a serial (21) needs a GTIN (01)) and "ex" (the AIs it must not
// appear with, e.g. (01) and (37)). To follow a new GS1 release, replace
// the file; the tests check the table against it.
//
// # Errors
//
// Parsing reports every problem it finds as an *Error with a stable Code
// ("bad_check_digit", "missing_required" …), the AI, and the byte
// position, collected in Errors. The Result is returned even then, with
// whatever could be read, because an operator wants to see what the scan
// said as well as why it was refused.
//
// Nothing in this package panics on any input; the fuzz tests hold it to
// that.
package gs1
