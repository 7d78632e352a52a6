package rules_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/scangw/scangw/station/rules"
)

const benchDeny = 1_000_000

// bigSet is a rule set whose deny list holds a million keys: 900 GTINs with
// a thousand recalled serials each, and 100,000 stolen serials of any
// product; plus the base set's rules.
var bigSet = sync.OnceValues(func() (payload, env []byte) {
	m := baseSet()
	deny := m["deny"].([]any)
	for g := range 900 {
		serials := make([]string, 1000)
		for i := range serials {
			serials[i] = fmt.Sprintf("SN%010d", g*1000+i)
		}
		deny = append(deny, map[string]any{"gtin": gtin(fmt.Sprintf("0950600%06d", g)), "serials": serials, "reason": "recalled",
			"message": fmt.Sprintf("Recall R-%d", g%20)})
	}
	for b := range 100 {
		serials := make([]string, 1000)
		for i := range serials {
			serials[i] = fmt.Sprintf("ST%010d", b*1000+i)
		}
		deny = append(deny, map[string]any{"serials": serials, "reason": "stolen"})
	}
	m["deny"] = deny
	payload, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	env, err = rules.Sign(payload, key(1))
	if err != nil {
		panic(err)
	}
	return payload, env
})

func BenchmarkValidate(b *testing.B) {
	_, env := bigSet()
	e, err := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}, Seen: rules.NewMemorySeen(100_000), Location: time.UTC})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.Load(env); err != nil {
		b.Fatal(err)
	}
	if n := e.Current(rules.ScopeSite).Stats().DenyKeys; n < benchDeny {
		b.Fatalf("deny keys %d", n)
	}
	noSet, _ := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}})
	cases := []struct {
		name, sym, data string
		e               *rules.Engine
		verdict         string
	}{
		{"gs1/accepted", "]d2", gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), e, "accepted"},
		{"gs1/denied", "]d2", gs1Scan(gtin("0950600000412"), "270131", "ABC1", "SN0000412345"), e, "rejected"},
		{"plain/accepted", "", "SN-12345", e, "accepted"},
		{"plain/denied", "", "ST0000054321", e, "rejected"},
		{"hibc/accepted", "", hibcCode("+A99912345/$$+3270131SER123"), e, "accepted"},
		{"gs1/no-set", "]d2", gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), noSet, "accepted"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			s := scan(tc.sym, tc.data, "receive", nil)
			tc.e.Validate(s)
			if s.Verdict != tc.verdict {
				b.Fatalf("verdict %s %v", s.Verdict, fmtReasons(s.Reasons))
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Verdict, s.Reasons = "", s.Reasons[:0]
				tc.e.Validate(s)
			}
		})
	}
}

// heapBytes is the heap's live and not yet collected objects.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkDenyListMemory reports what a loaded million-entry set costs
// (MiB-held, after a GC) and the peak heap growth while it is decoded
// (MiB-peak, sampled every 200µs, envelope included).
func BenchmarkDenyListMemory(b *testing.B) {
	_, env := bigSet()
	keys := []ed25519.PublicKey{pub(key(1))}
	for b.Loop() {
		runtime.GC()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		base := heapBytes()
		stop, peak := make(chan struct{}), make(chan uint64)
		go func() {
			var p uint64
			t := time.NewTicker(200 * time.Microsecond)
			defer t.Stop()
			for {
				if h := heapBytes(); h > p {
					p = h
				}
				select {
				case <-stop:
					peak <- p
					return
				case <-t.C:
				}
			}
		}()
		set, err := rules.Decode(env, keys, 0)
		close(stop)
		p := <-peak
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "MiB-held")
		b.ReportMetric(float64(int64(p)-int64(base))/(1<<20), "MiB-peak")
		b.ReportMetric(float64(set.Stats().DenyBytes)/(1<<20), "MiB-index")
		runtime.KeepAlive(set)
	}
}

// BenchmarkDenyListMemoryMap is the comparison the design was chosen by:
// the same million keys as strings in a map.
func BenchmarkDenyListMemoryMap(b *testing.B) {
	for b.Loop() {
		runtime.GC()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m := make(map[string]struct{})
		for i := range benchDeny {
			m[fmt.Sprintf("s\x0009506000%06d\x00SN%010d", i/1000, i)] = struct{}{}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "MiB-held")
		runtime.KeepAlive(m)
	}
}

func BenchmarkDecode1M(b *testing.B) {
	_, env := bigSet()
	keys := []ed25519.PublicKey{pub(key(1))}
	b.ReportAllocs()
	b.SetBytes(int64(len(env)))
	for b.Loop() {
		if _, err := rules.Decode(env, keys, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeNotNewer is the retained set redelivered on every MQTT
// reconnect: refused after the signature and header, the deny list never
// built.
func BenchmarkDecodeNotNewer(b *testing.B) {
	_, env := bigSet()
	keys := []ed25519.PublicKey{pub(key(1))}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rules.Decode(env, keys, 1); rules.Code(err) != rules.CodeNotNewer {
			b.Fatal(err)
		}
	}
}
