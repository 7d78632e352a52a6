// Package label makes the ZPL labels a station prints for the serials it
// issues, and reads such labels back.
//
// # Templates
//
// A template is a ZPL document, one or more formats ^XA … ^XZ, whose field
// data (^FD … ^FS) may hold placeholders:
//
//	{serial}    the serial
//	{gtin}      the GTIN, as (01) carries it (14 digits)
//	{product}   a product name or SKU
//	{lot}       the batch/lot
//	{expiry}    the expiry date, YYMMDD
//	{gs1}       the human-readable GS1 data, "(01)09506000134352(21)ABC"
//	{gs1_data}  the GS1 data of a DataMatrix: alone in a quality 200 ^BX field
//	{reprint}   "REPRINT" on a reprint, "" on the first label
//
// {{ and }} are literal braces. An unknown placeholder, a placeholder
// outside field data, or in a barcode field other than ^BX, is an error
// with its offset; so is ZPL the package cannot vouch for (see scan in
// zpl.go): text outside a format, a ^ or ~ that ends field data early, a
// change of the prefix characters.
//
// # Values in ZPL
//
// ZPL reads ^ and ~ anywhere as the start of a command, and drops CR and
// LF, so a serial or product name holding them would change the label or
// the printer's settings. Render writes each value escaped for its field:
// with ^FH (field hexadecimal) in the field, every byte ZPL could
// interpret, and the indicator itself, becomes a hex escape (_5E for ^);
// without ^FH such a value is refused. DefaultTemplate puts ^FH in every
// text field, so any value prints as it is.
//
// # GS1 DataMatrix
//
// The GS1 data is built from the values in the order (01) GTIN, (17)
// expiry, (10) lot, (21) serial, and must pass gs1.Parse. A GS1
// DataMatrix starts with FNC1, and an FNC1 ends each variable-length
// element followed by another. ZPL writes FNC1 in a quality 200 ^BX
// field as the escape character g of ^BX followed by 1 (ZPL II
// Programming Guide, ^BX, "Field Data (^FD) for ^BX"; Zebra's knowledge
// base article "Creating GS1 Barcodes with Zebra Printers"):
//
//	^BXN,5,200,,,,_^FD_101095060001343521727123110LOT42_121SN0001^FS
//
// The guide gives g's default as _ on some firmware and ~ on other, so
// a template must name it; _ is Zebra's advice (a ~ would be read as the
// control prefix). In the data, g itself is doubled and other bytes that
// need it are written gdNNN. ^FH, when the field has it, is undone by
// the printer before these escapes.
//
// # Reading a job back
//
// ParseJob reads a job as a printer does and returns each field's data
// with the escapes undone; a GS1 DataMatrix's data is then the element
// string with GS separators that a scanner transmits and gs1.Parse and
// scangw inspect accept. Preview draws that data as a PNG.
package label
