package station

// ParseAIM splits an AIM symbology identifier (ISO/IEC 15424: "]", a code
// character naming the symbology, a modifier character) off the front of a
// scan. Scanners configured to transmit it prefix every scan with it: "]C1"
// is GS1-128, "]d2" GS1 DataMatrix, "]Q3" GS1 QR, "]E0" EAN-13. Data that does
// not start with a well-formed identifier is returned unchanged with "".
func ParseAIM(data []byte) (symbology string, rest []byte) {
	if len(data) < 3 || data[0] != ']' || !isAlpha(data[1]) || !isAlnum(data[2]) {
		return "", data
	}
	return string(data[:3]), data[3:]
}

func isAlpha(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' }
