package rules

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"
	"sort"
	"unicode/utf8"
)

// Deny lists, expected-serial lists and shipped lists can hold millions of keys on a
// gateway with a few hundred MiB of RAM, so they are kept as 64-bit hashes
// in one sorted slice (8 bytes a key, plus 4 for what the key maps to)
// instead of a map of strings (about 90 bytes a key; see the benchmarks).
// A lookup is a bucket index step and a binary search over a handful of
// neighbours. Two different keys share a hash with probability 2^-64, so a
// million-entry list denies a good unit by accident about once in 10^13
// scans; the rule set is signed, so nobody can choose entries to force a
// collision.

// seed is fixed for the life of the process and never written after
// start: hashes are never persisted, only recomputed from the envelope.
var seed = maphash.MakeSeed()

// Key kinds: what a product-qualified hash is about. They keep "serial X
// of product P" apart from "lot X of product P".
const (
	kindSerial  = 's' // product + serial
	kindLot     = 'l' // product + lot
	kindProduct = 'p' // the whole product
	kindAny     = 'S' // a serial of any product
	kindShipped = 'r' // a shipped list (shipHash)
)

// productHash hashes a kind and a product key ("g" + GTIN-14 or "k" +
// SKU; "" for kindAny).
func productHash(kind byte, product string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteByte(kind)
	h.WriteString(product)
	return h.Sum64()
}

// keyHash is productHash(kind, string(prefix)+name) without building the
// product key: maphash hashes a sequence of writes as their concatenation.
func keyHash(kind, prefix byte, name string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteByte(kind)
	h.WriteByte(prefix)
	h.WriteString(name)
	return h.Sum64()
}

// shipHash hashes a shipped list's key: its level, customer or order, and
// product key. Values never hold a NUL (checkValue), so the separator
// keeps ("ab", "c") apart from ("a", "bc").
func shipHash(level byte, value, product string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteByte(kindShipped)
	h.WriteByte(level)
	h.WriteString(value)
	h.WriteByte(0)
	h.WriteString(product)
	return h.Sum64()
}

func valueHash(v string) uint64 { return maphash.String(seed, v) }

// combine makes the key hash of a (kind, product) and a value. It is a
// bijection in hv for a fixed hp (the multiplier is odd, fmix64 is
// invertible), so keys of one product never collide with each other
// unless their values' hashes do; values are hashed before the product is
// known, which lets the decoder hash a list without keeping its strings.
func combine(hp, hv uint64) uint64 {
	x := hv ^ (hp * 0x9e3779b97f4a7c15)
	// fmix64 of MurmurHash3.
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb93fe53a87ce
	x ^= x >> 33
	return x
}

var emptyHash = valueHash("")

// maxValue bounds one serial, lot, SKU or order in a rule set, in bytes.
// A 2D symbol holds a few kB; no identifier is longer than this.
const maxValue = 256

// checkValue reports why v cannot be a serial, lot or SKU in a rule set,
// or "" when it can. Scans never contain control characters other than the
// separators, so a value with one could never match.
func checkValue(v string) string {
	switch {
	case v == "":
		return "empty"
	case len(v) > maxValue:
		return fmt.Sprintf("longer than %d bytes", maxValue)
	case !utf8.ValidString(v):
		return "not valid UTF-8"
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return fmt.Sprintf("control character 0x%02X", v[i])
		}
	}
	return ""
}

// hashList is a JSON array of strings decoded straight into their value
// hashes, so a million serials cost 8 MB while decoding instead of the
// 32 MB their strings would. Problems are kept, not returned, so that the
// rule checker can report them with their full path.
type hashList struct {
	hashes  []uint64
	problem string // "" when the list was well formed
}

// UnmarshalJSON implements json.Unmarshaler. encoding/json hands it one
// complete, syntactically valid value; it still checks every step, as it
// is the first thing outside bytes reach.
func (l *hashList) UnmarshalJSON(b []byte) error {
	l.hashes, l.problem = l.hashes[:0], ""
	i := skipSpace(b, 0)
	if len(b)-i >= 4 && string(b[i:i+4]) == "null" {
		return nil
	}
	if i >= len(b) || b[i] != '[' {
		l.problem = "want an array of strings"
		return nil
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil
	}
	for n := 0; ; n++ {
		if i >= len(b) || b[i] != '"' {
			l.problem = fmt.Sprintf("element %d: want a string", n)
			return nil
		}
		j, escaped := i+1, false
		for j < len(b) && b[j] != '"' {
			if b[j] == '\\' {
				escaped = true
				j++
			}
			j++
		}
		if j >= len(b) {
			l.problem = fmt.Sprintf("element %d: unterminated string", n)
			return nil
		}
		if escaped {
			var v string
			if err := json.Unmarshal(b[i:j+1], &v); err != nil {
				l.problem = fmt.Sprintf("element %d: %v", n, err)
				return nil
			}
			if !l.add(n, v) {
				return nil
			}
		} else if !l.add(n, string(b[i+1:j])) { // a non-escaping conversion: no allocation
			return nil
		}
		i = skipSpace(b, j+1)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == ']':
			return nil
		default:
			l.problem = fmt.Sprintf("element %d: want \",\" or \"]\"", n)
			return nil
		}
	}
}

// add checks and hashes element n.
func (l *hashList) add(n int, v string) bool {
	if p := checkValue(v); p != "" {
		l.problem = fmt.Sprintf("element %d: %s", n, p)
		return false
	}
	l.hashes = append(l.hashes, valueHash(v))
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// keySet is a static set of key hashes, each with a uint32 value.
type keySet struct {
	hashes []uint64 // sorted, unique
	vals   []uint32 // vals[i] belongs to hashes[i]; nil when only membership matters
	// index[b] is the first position whose hash has top bits b; it has
	// 1<<bits + 1 entries. It turns a 20-step binary search over a million
	// keys into one lookup and a search of about 8.
	index []uint32
	shift uint
}

// newKeySet builds a set from parallel slices of hashes and values (vals
// may be nil), which it takes over and sorts in place: a million keys
// need no second copy while the set is built. Of several entries with the
// same hash the one with the smallest value is kept, so the first deny
// entry in the file wins.
func newKeySet(hashes []uint64, vals []uint32) keySet {
	if len(hashes) == 0 {
		return keySet{}
	}
	k := keySet{hashes: hashes, vals: vals}
	nbits := 0
	if n := len(hashes) / 8; n > 1 {
		nbits = min(bits.Len(uint(n-1)), 24)
	}
	k.shift = uint(64 - nbits)
	nb := 1 << nbits

	// An in-place radix sort on the top bits (American flag sort): the
	// hashes are uniform, so the buckets come out about 8 keys long and an
	// insertion sort finishes each.
	k.index = make([]uint32, nb+1)
	for _, h := range hashes {
		k.index[k.bucket(h)+1]++
	}
	for b := range nb {
		k.index[b+1] += k.index[b]
	}
	next := slices.Clone(k.index[:nb])
	for b := range nb {
		for next[b] < k.index[b+1] {
			i := next[b]
			h := hashes[i]
			var v uint32
			if vals != nil {
				v = vals[i]
			}
			for tb := k.bucket(h); tb != b; tb = k.bucket(h) {
				j := next[tb]
				next[tb]++
				hashes[j], h = h, hashes[j]
				if vals != nil {
					vals[j], v = v, vals[j]
				}
			}
			hashes[i] = h
			if vals != nil {
				vals[i] = v
			}
			next[b]++
		}
	}
	for b := range nb {
		k.sortRange(int(k.index[b]), int(k.index[b+1]))
	}

	// Drop duplicates, then index the buckets again.
	n := 0
	for i, h := range hashes {
		if i > 0 && h == hashes[n-1] {
			continue
		}
		hashes[n] = h
		if vals != nil {
			vals[n] = vals[i]
		}
		n++
	}
	if n < len(hashes) {
		k.hashes = slices.Clip(hashes[:n])
		if vals != nil {
			k.vals = slices.Clip(vals[:n])
		}
	}
	b := 0
	for i, h := range k.hashes {
		for hb := k.bucket(h); b <= hb; b++ {
			k.index[b] = uint32(i)
		}
	}
	for ; b < len(k.index); b++ {
		k.index[b] = uint32(len(k.hashes))
	}
	return k
}

// sortRange sorts hashes[lo:hi] by hash, then value: by insertion, as a
// bucket is about 8 keys long, unless a key was listed many times over.
func (k *keySet) sortRange(lo, hi int) {
	if hi-lo > 64 {
		p := parallel{h: k.hashes[lo:hi]}
		if k.vals != nil {
			p.v = k.vals[lo:hi]
		}
		sort.Sort(p)
		return
	}
	less := func(i, j int) bool {
		if k.hashes[i] != k.hashes[j] {
			return k.hashes[i] < k.hashes[j]
		}
		return k.vals != nil && k.vals[i] < k.vals[j]
	}
	for i := lo + 1; i < hi; i++ {
		for j := i; j > lo && less(j, j-1); j-- {
			k.hashes[j], k.hashes[j-1] = k.hashes[j-1], k.hashes[j]
			if k.vals != nil {
				k.vals[j], k.vals[j-1] = k.vals[j-1], k.vals[j]
			}
		}
	}
}

// parallel sorts hashes and their values together.
type parallel struct {
	h []uint64
	v []uint32
}

func (p parallel) Len() int { return len(p.h) }
func (p parallel) Less(i, j int) bool {
	if p.h[i] != p.h[j] {
		return p.h[i] < p.h[j]
	}
	return p.v != nil && p.v[i] < p.v[j]
}
func (p parallel) Swap(i, j int) {
	p.h[i], p.h[j] = p.h[j], p.h[i]
	if p.v != nil {
		p.v[i], p.v[j] = p.v[j], p.v[i]
	}
}

func (k *keySet) bucket(h uint64) int {
	if k.shift >= 64 {
		return 0
	}
	return int(h >> k.shift)
}

// Len is the number of distinct keys.
func (k *keySet) Len() int { return len(k.hashes) }

// lookup returns the value of key hash h.
func (k *keySet) lookup(h uint64) (uint32, bool) {
	if len(k.hashes) == 0 {
		return 0, false
	}
	b := k.bucket(h)
	lo, hi := int(k.index[b]), int(k.index[b+1])
	i, ok := slices.BinarySearch(k.hashes[lo:hi], h)
	if !ok || k.vals == nil {
		return 0, ok
	}
	return k.vals[lo+i], true
}

// bytes is the memory the set holds.
func (k *keySet) bytes() int {
	return 8*cap(k.hashes) + 4*cap(k.vals) + 4*cap(k.index)
}
