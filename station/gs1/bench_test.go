package gs1

import "testing"

// typical is what a GS1 DataMatrix on a pharmaceutical pack carries:
// GTIN, expiry, lot, serial (EU FMD / DSCSA layout).
const typical = "]d201" + gtin + "17271231" + "10ABC123\x1d21XYZ789012"

func BenchmarkParseDataMatrix(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Parse(typical); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBracketed(b *testing.B) {
	in := "(01)" + gtin + "(17)271231(10)ABC123(21)XYZ789012"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseDigitalLink(b *testing.B) {
	in := "https://id.example.com/01/" + gtin + "/10/ABC123/21/XYZ789012?17=271231"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseInvalid(b *testing.B) {
	in := "]d201" + "09506000134353" + "17271331" + "10ABC123\x1d21XYZ789012"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Parse(in); err == nil {
			b.Fatal("no error")
		}
	}
}
