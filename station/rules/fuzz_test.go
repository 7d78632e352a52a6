package rules_test

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"testing"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/rules"
)

// FuzzDecode feeds arbitrary bytes to the decoder as an envelope and as a
// payload: it must never panic, every refusal must carry a code, and a set
// it accepts must judge scans without panicking either.
func FuzzDecode(f *testing.F) {
	base := mustJSON(f, baseSet())
	f.Add(base)
	if b, err := os.ReadFile("testdata/example.json"); err == nil {
		f.Add(b)
	}
	env, _ := rules.Sign(base, key(1))
	f.Add(env)
	unsigned, _ := rules.Unsigned(base)
	f.Add(unsigned)
	for _, s := range []string{
		`{"schema":1,"version":1,"issued":"2026-01-01T00:00:00Z","scope":"site","deny":[{"serials":["A","B\u00e9"],"reason":"x"}]}`,
		`{"schema":1,"version":1,"issued":"2026-01-01T00:00:00Z","scope":"gateway","gateway":"g","products":[{"sku":"S","serial":{"pattern":"(a|b)*","min":1,"max":3,"charset":"ab€","check":"mod43"}}]}`,
		`{"schema":1,"version":1,"issued":"2026-01-01T00:00:00Z","scope":"site","expected":[{"order":"O","serials":["A"]},{"order":"O","gtin":"09506000134352"}]}`,
		`{"schema":1,"version":1,"issued":"2026-01-01T00:00:00Z","scope":"site","documents":[{"kind":"order","pattern":"PO-(?P<value>[0-9]+)","key":"po"},{"kind":"close","pattern":"#C"}]}`,
		`{"schema":1,"version":1,"issued":"2026-01-01T00:00:00Z","scope":"site","expected":[{"order":"O","gtin":"09506000134352","serials":["A","A","B"],"quantity":2},{"order":"O","sku":"S","quantity":3},{"order":"O","sku":"S"}]}`,
		`{"schema":1,"version":1,"issued":"2026-01-01T00:00:00Z","scope":"site","shipped":[{"customer":"C","order":"O","sku":"S","serials":["ab"],"policy":"warn","reason":"not_ours","message":"m"},{"gtin":"09506000134352","serials":["SERIAL01"]}],"returns":{"already_returned":"warn"}}`,
		`{"schema":1,"version":1,"issued":"2026-01-01T00:00:00Z","scope":"site","shipped":[{"sku":"S","serials":["a"]},{"sku":"S","serials":["b"],"reason":"x"}],"documents":[{"kind":"order","pattern":"(?P<v>x)"}]}`,
		`{"schema":2}`, `{"payload":"e30=","sig":"AAAA"}`, `[]`, `{"deny":[{"serials":[1]}]}`, `{"deny":{"serials":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	keys := []ed25519.PublicKey{pub(key(1))}
	scans := []*station.Scan{
		scan("]d2", gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), "receive", map[string]string{"order": "O"}),
		scan("", "09506000134352", "ship", nil),
		scan("", hibcCode("+A99912345/$$+3270131SER123"), "receive", nil),
		scan("", "ab", "ship", map[string]string{"sku": "S", "order": "O"}),
		scan("", "A", "count", nil),
		scan("]d2", gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), "return", map[string]string{"customer": "C", "order": "O"}),
		scan("", "ab", "return", map[string]string{"sku": "S", "customer": "C"}),
		scan("", "ab", "pack", map[string]string{"sku": "S"}),
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(what string, err error) {
			if err != nil && rules.Code(err) == "" {
				t.Fatalf("%s: error without a code: %v", what, err)
			}
		}
		_, err := rules.Decode(b, keys, 0)
		check("envelope", err)
		_, err = rules.DecodeUnsigned(b, 0)
		check("unsigned envelope", err)
		_, err = rules.Check(b)
		check("payload", err)

		env, _ := json.Marshal(map[string]any{"payload": b})
		e, _ := rules.New(rules.Options{AllowUnsigned: true, Seen: rules.NewMemorySeen(8)})
		if _, err := e.Load(env); err != nil {
			check("wrapped payload", err)
			return
		}
		for _, s := range scans {
			c := *s
			c.Reasons = nil
			e.Judge(&c)
			e.Validate(&c)
			if c.Verdict == "" {
				t.Fatalf("no verdict")
			}
			e.Record(&c)
		}
		// What the workflow asks of the rules must not panic either.
		for _, p := range e.Documents() {
			if p.Match == nil || p.Kind == "" {
				t.Fatalf("pattern without a kind or an expression: %+v", p)
			}
			p.Match.FindStringSubmatch("PO-1234")
		}
		for _, name := range []string{"O", "PO-1234"} {
			o, ok := e.Order(name)
			if ok && o.Listed != nil {
				for _, l := range o.Lines {
					o.Listed(l.Product, "A")
				}
			}
			for _, l := range o.Lines {
				if l.Quantity < 0 {
					t.Fatalf("line %+v", l)
				}
			}
		}
	})
}
