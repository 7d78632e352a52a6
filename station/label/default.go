package label

// DefaultTemplate is a 2 × 1 inch label for a 203 dpi printer (406 × 203
// dots): the GS1 DataMatrix at the top left (5-dot modules, 0.63 mm;
// about 14 mm square for the usual data), beside it the product, the
// human-readable GS1 data and under them the REPRINT mark, and the serial
// in large type across the bottom. ^CI28 reads text as UTF-8; every text
// field has ^FH so any value can be written. The DataMatrix field needs
// none: Render only writes GS1 data that passed gs1.Parse, whose
// characters (CSET 82) include no ^ or ~.
const DefaultTemplate = `^XA
^CI28
^PW406
^LL203
^LH0,0
^FO12,12^BXN,5,200,,,,_^FD{gs1_data}^FS
^FO136,12^A0N,22,20^FB262,1,0,L^FH_^FD{product}^FS
^FO136,38^A0N,18,14^FB262,4,2,L^FH_^FD{gs1}^FS
^FO136,120^A0N,24,24^FH_^FD{reprint}^FS
^FO12,150^A0N,44,36^FB382,1,0,L^FH_^FD{serial}^FS
^XZ
`

// SerialTemplate is DefaultTemplate for a serial with no GTIN (an
// internal serial of a unit without a product code): GS1 has no element
// string for it, so its DataMatrix is a plain one that carries the serial
// alone, as a scanner then transmits it. Its escape character is "#",
// which GS1's CSET 82 (what a serial holds) lacks, so no serial reads as
// an escape sequence.
const SerialTemplate = `^XA
^CI28
^PW406
^LL203
^LH0,0
^FO12,12^BXN,5,200,,,,#^FH_^FD{serial}^FS
^FO136,12^A0N,22,20^FB262,1,0,L^FH_^FD{product}^FS
^FO136,120^A0N,24,24^FH_^FD{reprint}^FS
^FO12,150^A0N,44,36^FB382,1,0,L^FH_^FD{serial}^FS
^XZ
`
