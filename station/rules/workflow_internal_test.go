package rules

import (
	"encoding/json"
	"testing"
)

// Listed hashes a product without building its key; the hash must be the
// one the decoder built the key with.
func TestKeyHashIsProductHash(t *testing.T) {
	for _, name := range []string{"", "09506000134352", "PUMP-200", "é"} {
		for _, prefix := range []byte{'g', 'k'} {
			if keyHash(kindSerial, prefix, name) != productHash(kindSerial, string(prefix)+name) {
				t.Errorf("keyHash(%c, %q) differs", prefix, name)
			}
		}
	}
	if shipHash(levelCustomer, "ab", "kc") == shipHash(levelCustomer, "a", "bkc") {
		t.Error("shipped lists' keys run into each other")
	}
}

// countShipped allocates the shipped hashes once: it must never count
// fewer keys than decoding makes.
func TestCountShipped(t *testing.T) {
	for _, list := range []string{
		`[{"customer":"C","order":"O","sku":"S","serials":["a","b"]},{"sku":"S","serials":["c"]},{"order":"O","sku":"T","serials":["a"]}]`,
		`[{"sku":"S","serials":["a","b","c"]},{"customer":"C","sku":"S","serials":["c"]}]`,
		`null`, `[]`,
	} {
		var l shippedList
		if err := json.Unmarshal([]byte(list), &l); err != nil || l.problems != nil {
			t.Fatalf("%s: %v %v", list, err, l.problems)
		}
		if n := countShipped([]byte(list)); n < len(l.hashes) {
			t.Errorf("%s: counted %d, made %d", list, n, len(l.hashes))
		}
		if cap(l.hashes) != len(l.hashes) {
			t.Errorf("%s: capacity %d for %d keys", list, cap(l.hashes), len(l.hashes))
		}
	}
}
