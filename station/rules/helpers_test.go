package rules_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/rules"
)

// key makes a deterministic test key pair from a byte.
func key(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = b
	}
	return ed25519.NewKeyFromSeed(seed)
}

func pub(priv ed25519.PrivateKey) ed25519.PublicKey { return priv.Public().(ed25519.PublicKey) }

// gtin appends the GS1 check digit.
func gtin(data string) string {
	c, err := checkdigit.GS1Mod10(data)
	if err != nil {
		panic(err)
	}
	return data + string(c)
}

// hibcCode appends the mod 43 check character.
func hibcCode(data string) string {
	c, err := checkdigit.Mod43(data)
	if err != nil {
		panic(err)
	}
	return data + string(c)
}

var (
	gtinA       = "09506000134352"      // full rules: serial, lot, expiry
	gtinB       = gtin("0400638133393") // digits + luhn serial, warns on expiry
	gtinUnknown = gtin("003600029145")  // no product rule
	gtinBanned  = gtin("950600099999")  // denied as a whole
)

// baseSet is the rule set the engine tests judge with.
func baseSet() map[string]any {
	return map[string]any{
		"schema":          1,
		"version":         1,
		"issued":          "2026-06-01T00:00:00Z",
		"scope":           "site",
		"site":            "dc-east",
		"unknown_product": "warn",
		"products": []any{
			map[string]any{
				"gtin":    gtinA,
				"serial":  map[string]any{"pattern": "[A-Z0-9]+", "min": 6, "max": 12},
				"require": []any{"serial", "lot", "expiry"},
				"expiry":  map[string]any{"reject_expired": true, "warn_within_days": 30},
			},
			map[string]any{
				"gtin":    gtinB,
				"serial":  map[string]any{"charset": "0123456789", "check": "luhn"},
				"require": []any{"serial"},
				"expiry":  map[string]any{"reject_expired": false},
			},
			map[string]any{"sku": "A9991234", "require": []any{"serial"}, "expiry": map[string]any{"reject_expired": true}},
			map[string]any{"sku": "PUMP-200", "serial": map[string]any{"pattern": "P2[0-9]{7}[0-9A-Z*]", "check": "mod37-2"}},
			map[string]any{"gtin": gtinBanned},
		},
		"deny": []any{
			map[string]any{"gtin": gtinA, "serials": []any{"RECALL0001", "RECALL0002"}, "reason": "recalled", "message": "Recall R-14"},
			map[string]any{"gtin": gtinA, "lot": "L2309", "reason": "recalled", "message": "Recall R-14 lot"},
			map[string]any{"serial": "SN-STOLEN-77", "reason": "stolen"},
			map[string]any{"sku": "A9991234", "serials": []any{"FAKE0001"}, "reason": "counterfeit"},
			map[string]any{"gtin": gtinBanned, "reason": "withdrawn", "message": "withdrawn from sale"},
		},
		"duplicates": map[string]any{"receive": "reject", "ship": "warn", "ship_requires_received": "reject"},
		"expected": []any{
			map[string]any{"order": "PO-1234", "policy": "warn", "gtin": gtinA, "serials": []any{"ABC123", "ABC124"}},
			map[string]any{"order": "PO-1234", "serials": []any{"SN-0001"}},
			map[string]any{"order": "PO-9", "policy": "reject", "gtin": gtinB},
		},
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signed signs a payload without checking it, as a forger or a broken
// central system would.
func signed(t testing.TB, payload []byte, priv ed25519.PrivateKey) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{"payload": payload, "sig": ed25519.Sign(priv, payload), "key": rules.KeyID(pub(priv))})
}

// withVersion returns baseSet with another version.
func withVersion(v int) map[string]any {
	m := baseSet()
	m["version"] = v
	return m
}

// engine makes an engine trusting key(1) with baseSet loaded.
func engine(t testing.TB, seen rules.Seen) *rules.Engine {
	t.Helper()
	e, err := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}, Site: "dc-east", Gateway: "gw-01", Seen: seen, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	env, err := rules.Sign(mustJSON(t, baseSet()), key(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Load(env); err != nil {
		t.Fatal(err)
	}
	return e
}

var scanTime = time.Date(2026, 7, 10, 10, 0, 0, 0, time.UTC)

func scan(sym, data, mode string, ctx map[string]string) *station.Scan {
	return &station.Scan{ID: "test", Time: scanTime, Station: "dock-1", Mode: mode, Context: ctx, Symbology: sym, Data: []byte(data), ClockSynced: true}
}

// gs1Scan builds a GS1 DataMatrix element string: (01) (17) (10) GS (21).
func gs1Scan(g, expiry, lot, serial string) string {
	s := "01" + g
	if expiry != "" {
		s += "17" + expiry
	}
	if lot != "" {
		s += "10" + lot
	}
	if serial != "" {
		if lot != "" {
			s += "\x1d"
		}
		s += "21" + serial
	}
	return s
}

func codes(rs []station.Reason) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

func fmtReasons(rs []station.Reason) string {
	s := ""
	for _, r := range rs {
		s += fmt.Sprintf("\n  %s: %s", r.Code, r.Message)
	}
	return s
}

type ed25519PublicKey = ed25519.PublicKey

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscanf(s, "site:%d", v) }
