package rules_test

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/rules"
)

const benchShipped = 1_000_000

// bigShipped is a payload whose shipped lists hold a million serials: a
// thousand customers that got a thousand units each of one of ten
// products. It is written directly: marshalling a million strings through
// encoding/json would take longer than the test.
var bigShipped = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"schema":1,"version":1,"issued":"2026-06-01T00:00:00Z","scope":"site","shipped":[`)
	for c := range benchShipped / 1000 {
		if c > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"customer":"C%04d","gtin":"%s","serials":[`, c, gtin(fmt.Sprintf("0950600%06d", c%10)))
		for i := range 1000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"SN%010d"`, c*1000+i)
		}
		b.WriteString("]}")
	}
	b.WriteString("]}")
	return b.Bytes()
})

// A million shipped serials cost what a million deny keys do (see the
// package documentation, Scale): at most 12 bytes a key while decoding,
// beyond the payload itself, and 8 once built. Allocated bytes bound the
// peak from above and do not depend on when the collector runs.
func TestShippedMillionMemory(t *testing.T) {
	payload := bigShipped()
	runtime.GC()
	runtime.GC()
	var before, decoded, after runtime.MemStats
	runtime.ReadMemStats(&before)
	set, err := rules.Check(payload)
	runtime.ReadMemStats(&decoded)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	const mib = 1 << 20
	allocated := float64(decoded.TotalAlloc-before.TotalAlloc) / mib
	held := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / mib
	st := set.Stats()
	t.Logf("payload %.1f MiB; allocated %.1f MiB while decoding; held %.1f MiB; index %.1f MiB",
		float64(len(payload))/mib, allocated, held, float64(st.ShippedBytes)/mib)
	if st.ShippedKeys != benchShipped {
		t.Errorf("shipped keys %d", st.ShippedKeys)
	}
	if allocated > 12 {
		t.Errorf("decoding allocated %.1f MiB, more than 12 bytes a key", allocated)
	}
	if held > 9 || float64(st.ShippedBytes)/mib > 9 {
		t.Errorf("the set holds %.1f MiB (index %.1f MiB), more than 8 bytes a key and its bucket index", held, float64(st.ShippedBytes)/mib)
	}
	runtime.KeepAlive(set)

	e := load(t, nil)
	env, err := rules.Sign(payload, key(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Load(env); err != nil {
		t.Fatal(err)
	}
	for serial, want := range map[string]string{"SN0000123456": station.Accepted, "SN0000124456": station.Rejected} {
		s := scan("]d2", gs1Scan(gtin("0950600000003"), "", "", serial), "return", map[string]string{"customer": "C0123"})
		e.Validate(s)
		if s.Verdict != want {
			t.Errorf("%s: %s %v", serial, s.Verdict, fmtReasons(s.Reasons))
		}
	}
}

// BenchmarkValidateReturn is a return judged against a million shipped
// serials.
func BenchmarkValidateReturn(b *testing.B) {
	e := load(b, rules.NewMemorySeen(100_000))
	env, err := rules.Sign(bigShipped(), key(1))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.Load(env); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, serial, verdict string }{
		{"shipped", "SN0000123456", station.Accepted},
		{"not_shipped", "SN0000124456", station.Rejected},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := scan("]d2", gs1Scan(gtin("0950600000003"), "", "", tc.serial), "return", map[string]string{"customer": "C0123"})
			e.Validate(s)
			if s.Verdict != tc.verdict {
				b.Fatalf("verdict %s %v", s.Verdict, fmtReasons(s.Reasons))
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Verdict, s.Reasons = "", s.Reasons[:0]
				e.Validate(s)
			}
		})
	}
}
