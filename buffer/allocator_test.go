package buffer

import (
	"testing"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2/z"
)

// Badger's table builder allocates every block of a table it writes from
// a z.Allocator. Unpatched, the allocator started over at the beginning of
// its first buffer when that filled up on 32-bit platforms, so a memtable
// flush larger than the buffer overwrote its own earlier blocks (see
// third_party/ristretto/SCANGW.md). `make test` runs this on 386.
func TestAllocatorNeverHandsOutTheSameBytesTwice(t *testing.T) {
	a := z.NewAllocator(4<<10, "scangw-test")
	defer a.Release()
	type span struct{ lo, hi uintptr }
	var spans []span
	for i := range 64 { // well past the first 4 KiB buffer, into several more
		b := a.Allocate(3000)
		if len(b) != 3000 {
			t.Fatalf("allocation %d: %d bytes, want 3000", i, len(b))
		}
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		s := span{lo, lo + uintptr(len(b))}
		for j, o := range spans {
			if s.lo < o.hi && o.lo < s.hi {
				t.Fatalf("allocation %d overlaps allocation %d (%#x-%#x and %#x-%#x)", i, j, s.lo, s.hi, o.lo, o.hi)
			}
		}
		spans = append(spans, s)
	}
}
