package rules_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/scangw/scangw/station/rules"
)

func TestDecodeSigned(t *testing.T) {
	payload := mustJSON(t, baseSet())
	env, err := rules.Sign(payload, key(1))
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Decode(env, []ed25519.PublicKey{pub(key(2)), pub(key(1))}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if set.Name() != "site:1" || set.Scope != rules.ScopeSite || set.Site != "dc-east" || set.Issued.Year() != 2026 {
		t.Errorf("set = %+v", set)
	}
	st := set.Stats()
	if st.Products != 5 || st.DenyKeys != 6 || st.Orders != 2 || st.ExpectedKeys != 4 {
		t.Errorf("stats = %+v", st)
	}
	// An envelope without the key hint verifies against every trusted key.
	var m map[string]any
	json.Unmarshal(env, &m)
	delete(m, "key")
	if _, err := rules.Decode(mustJSON(t, m), []ed25519.PublicKey{pub(key(2)), pub(key(1))}, 0); err != nil {
		t.Errorf("without key id: %v", err)
	}
}

func TestDecodeUnsigned(t *testing.T) {
	env, err := rules.Unsigned(mustJSON(t, baseSet()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rules.DecodeUnsigned(env, 0); err != nil {
		t.Errorf("DecodeUnsigned: %v", err)
	}
	if _, err := rules.Decode(env, []ed25519.PublicKey{pub(key(1))}, 0); rules.Code(err) != rules.CodeUnsigned {
		t.Errorf("with keys: %v", err)
	}
	if _, err := rules.Decode(env, nil, 0); rules.Code(err) != rules.CodeUnsigned {
		t.Errorf("with no keys: %v", err)
	}
	if _, err := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}, AllowUnsigned: true}); err == nil {
		t.Error("New accepted keys and AllowUnsigned together")
	}
	e, err := rules.New(rules.Options{AllowUnsigned: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Load(env); err != nil {
		t.Errorf("engine allowing unsigned sets: %v", err)
	}
	e, _ = rules.New(rules.Options{})
	if _, err := e.Load(env); rules.Code(err) != rules.CodeUnsigned {
		t.Errorf("engine with no keys: %v", err)
	}
}

// tamper re-encodes an envelope after changing it.
func tamper(t *testing.T, env []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(env, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	return mustJSON(t, m)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Every refused set leaves the set in use in place.
func TestLoadRefusals(t *testing.T) {
	good := mustJSON(t, withVersion(5))
	goodEnv, err := rules.Sign(good, key(1))
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(m map[string]any)) []byte {
		m := withVersion(6) // newer than the set in use: only the change is wrong
		f(m)
		return signed(t, mustJSON(t, m), key(1))
	}
	product := func(f func(p map[string]any)) []byte {
		return mutate(func(m map[string]any) { f(m["products"].([]any)[0].(map[string]any)) })
	}
	deny := func(f func(d map[string]any)) []byte {
		return mutate(func(m map[string]any) { f(m["deny"].([]any)[0].(map[string]any)) })
	}
	// raw adds members, as JSON text, to the payload: a new field's
	// refusals are easiest to read as the JSON a central system would send.
	raw := func(members string) []byte {
		b := mustJSON(t, withVersion(6))
		return signed(t, append(append(b[:len(b)-1:len(b)-1], ","+members...), '}'), key(1))
	}
	documents := func(entry string) []byte {
		return raw(`"documents":[{"kind":"order","pattern":"PO-[0-9]+"},` + entry + `]`)
	}
	expected := func(entries string) []byte {
		m := withVersion(6)
		delete(m, "expected")
		b := mustJSON(t, m)
		base := `{"order":"PO-1","gtin":"` + gtinA + `","serials":["A1"]},{"order":"PO-1","sku":"S","quantity":2},{"order":"O","sku":"S"},`
		return signed(t, append(append(b[:len(b)-1:len(b)-1], `,"expected":[`+base+entries+`]`...), '}'), key(1))
	}
	shipped := func(entries string) []byte { return raw(`"shipped":[` + entries + `]`) }
	tests := []struct {
		name string
		env  []byte
		code string
		path string
	}{
		{name: "forged: another key", env: signed(t, good, key(2)), code: rules.CodeBadSignature},
		{name: "forged: names a trusted key", env: tamper(t, signed(t, good, key(2)), func(m map[string]any) { m["key"] = rules.KeyID(pub(key(1))) }),
			code: rules.CodeBadSignature},
		{name: "payload tampered", env: tamper(t, goodEnv, func(m map[string]any) {
			m["payload"] = b64(bytes.Replace(good, []byte(`"reason":"stolen"`), []byte(`"reason":"stolem"`), 1))
		}), code: rules.CodeBadSignature},
		{name: "signature tampered", env: tamper(t, goodEnv, func(m map[string]any) {
			sig, _ := base64.StdEncoding.DecodeString(m["sig"].(string))
			sig[10] ^= 1
			m["sig"] = b64(sig)
		}), code: rules.CodeBadSignature},
		{name: "signature truncated", env: tamper(t, goodEnv, func(m map[string]any) { m["sig"] = b64([]byte("short")) }), code: rules.CodeBadSignature},
		{name: "unsigned", env: tamper(t, goodEnv, func(m map[string]any) { delete(m, "sig") }), code: rules.CodeUnsigned},
		{name: "older version", env: signed(t, mustJSON(t, withVersion(4)), key(1)), code: rules.CodeNotNewer},
		{name: "same version", env: goodEnv, code: rules.CodeNotNewer},
		{name: "too large", env: append(bytes.Repeat([]byte(" "), 2<<20), goodEnv...), code: rules.CodeTooLarge},
		{name: "not json", env: []byte("payload"), code: rules.CodeBadJSON},
		{name: "empty", env: nil, code: rules.CodeBadJSON},
		{name: "envelope unknown field", env: tamper(t, goodEnv, func(m map[string]any) { m["x"] = 1 }), code: rules.CodeBadJSON},
		{name: "envelope trailing data", env: append(append([]byte{}, goodEnv...), "{}"...), code: rules.CodeBadJSON},
		{name: "payload not base64", env: tamper(t, goodEnv, func(m map[string]any) { m["payload"] = "!!" }), code: rules.CodeBadJSON},
		{name: "no payload", env: []byte(`{"sig":""}`), code: rules.CodeBadJSON},
		{name: "payload not json", env: signed(t, []byte("{schema"), key(1)), code: rules.CodeBadJSON},
		{name: "payload trailing data", env: signed(t, append(mustJSON(t, withVersion(9)), " []"...), key(1)), code: rules.CodeBadJSON},
		{name: "payload tampered to a newer version", env: tamper(t, goodEnv, func(m map[string]any) {
			m["payload"] = b64(bytes.Replace(good, []byte(`"version":5`), []byte(`"version":6`), 1))
		}), code: rules.CodeBadSignature},
		{name: "no schema", env: mutate(func(m map[string]any) { delete(m, "schema") }), code: rules.CodeBadSchema},
		{name: "schema 2", env: mutate(func(m map[string]any) { m["schema"] = 2 }), code: rules.CodeBadSchema},
		{name: "schema a string", env: mutate(func(m map[string]any) { m["schema"] = "1" }), code: rules.CodeBadSchema},
		{name: "wrong site", env: mutate(func(m map[string]any) { m["site"] = "dc-west" }), code: rules.CodeWrongTarget},
		{name: "wrong gateway", env: mutate(func(m map[string]any) { m["scope"], m["gateway"] = "gateway", "gw-02" }), code: rules.CodeWrongTarget},
		{name: "bad regex", env: product(func(p map[string]any) { p["serial"].(map[string]any)["pattern"] = "[A-Z" }),
			code: rules.CodeBadRule, path: "products[0].serial.pattern"},
		{name: "pattern escaping its anchors", env: product(func(p map[string]any) { p["serial"].(map[string]any)["pattern"] = "A)|(.*" }),
			code: rules.CodeBadRule, path: "products[0].serial.pattern"},
		{name: "bad check algorithm", env: product(func(p map[string]any) { p["serial"].(map[string]any)["check"] = "crc32" }),
			code: rules.CodeBadRule, path: "products[0].serial.check"},
		{name: "min above max", env: product(func(p map[string]any) { p["serial"].(map[string]any)["min"] = 30 }),
			code: rules.CodeBadRule, path: "products[0].serial.max"},
		{name: "bad gtin", env: product(func(p map[string]any) { p["gtin"] = "09506000134353" }), code: rules.CodeBadRule, path: "products[0].gtin"},
		{name: "gtin and sku", env: product(func(p map[string]any) { p["sku"] = "X" }), code: rules.CodeBadRule, path: "products[0]"},
		{name: "no product key", env: product(func(p map[string]any) { delete(p, "gtin") }), code: rules.CodeBadRule, path: "products[0]"},
		{name: "duplicate product", env: mutate(func(m map[string]any) {
			m["products"] = append(m["products"].([]any), map[string]any{"gtin": gtinA[1:]})
		}),
			code: rules.CodeBadRule, path: "products[5]"},
		{name: "bad require", env: product(func(p map[string]any) { p["require"] = []any{"lot", "colour"} }), code: rules.CodeBadRule, path: "products[0].require[1]"},
		{name: "bad warn days", env: product(func(p map[string]any) { p["expiry"].(map[string]any)["warn_within_days"] = -1 }),
			code: rules.CodeBadRule, path: "products[0].expiry.warn_within_days"},
		{name: "unknown field", env: product(func(p map[string]any) { p["requires"] = []any{"lot"} }), code: rules.CodeBadRule, path: "products[0].requires"},
		{name: "unknown field in a deny entry", env: deny(func(d map[string]any) { d["serail"] = "X" }), code: rules.CodeBadRule, path: "deny[0].serail"},
		{name: "unknown top-level field", env: mutate(func(m map[string]any) { m["denied"] = []any{} }), code: rules.CodeBadRule, path: "denied"},
		{name: "wrong type", env: product(func(p map[string]any) { p["serial"].(map[string]any)["min"] = "6" }), code: rules.CodeBadRule, path: "products.serial.min"},

		// children of a parent product
		{name: "children empty", env: product(func(p map[string]any) { p["children"] = map[string]any{} }), code: rules.CodeBadRule, path: "products[0].children"},
		{name: "children count 0", env: product(func(p map[string]any) { p["children"] = map[string]any{"count": 0} }), code: rules.CodeBadRule, path: "products[0].children.count"},
		{name: "children count negative", env: product(func(p map[string]any) { p["children"] = map[string]any{"count": -3} }), code: rules.CodeBadRule, path: "products[0].children.count"},
		{name: "children count too large", env: product(func(p map[string]any) { p["children"] = map[string]any{"count": 5001} }), code: rules.CodeBadRule, path: "products[0].children.count"},
		{name: "children count a string", env: product(func(p map[string]any) { p["children"] = map[string]any{"count": "3"} }), code: rules.CodeBadRule, path: "products.children.count"},
		{name: "children count not an integer", env: product(func(p map[string]any) { p["children"] = map[string]any{"count": 1.5} }), code: rules.CodeBadRule, path: "products.children.count"},
		{name: "children products empty", env: product(func(p map[string]any) { p["children"] = map[string]any{"products": []any{}} }), code: rules.CodeBadRule, path: "products[0].children.products"},
		{name: "children product empty", env: product(func(p map[string]any) { p["children"] = map[string]any{"products": []any{gtinB, ""}} }), code: rules.CodeBadRule, path: "products[0].children.products[1]"},
		{name: "children product bad check digit", env: product(func(p map[string]any) { p["children"] = map[string]any{"products": []any{"S", "09506000134353"}} }), code: rules.CodeBadRule, path: "products[0].children.products[1]"},
		{name: "children product a GTIN-13", env: product(func(p map[string]any) { p["children"] = map[string]any{"products": []any{gtinB[1:]}} }), code: rules.CodeBadRule, path: "products[0].children.products[0]"},
		{name: "children product a control character", env: product(func(p map[string]any) { p["children"] = map[string]any{"products": []any{"S"}} }), code: rules.CodeBadRule, path: "products[0].children.products[0]"},
		{name: "children product too long", env: product(func(p map[string]any) { p["children"] = map[string]any{"products": []any{strings.Repeat("s", 257)}} }), code: rules.CodeBadRule, path: "products[0].children.products[0]"},
		{name: "children too many products", env: product(func(p map[string]any) {
			var ps []any
			for i := range 257 {
				ps = append(ps, fmt.Sprintf("S%d", i))
			}
			p["children"] = map[string]any{"products": ps}
		}), code: rules.CodeBadRule, path: "products[0].children.products"},
		{name: "children product not a string", env: product(func(p map[string]any) { p["children"] = map[string]any{"products": []any{7}} }), code: rules.CodeBadRule, path: "products.children.products"},
		{name: "children not an object", env: product(func(p map[string]any) { p["children"] = 12 }), code: rules.CodeBadRule, path: "products.children"},
		{name: "children unknown field", env: product(func(p map[string]any) { p["children"] = map[string]any{"counts": 12} }), code: rules.CodeBadRule, path: "products[0].children.counts"},
		{name: "bad reason", env: deny(func(d map[string]any) { d["reason"] = "Recalled!" }), code: rules.CodeBadRule, path: "deny[0].reason"},
		{name: "no reason", env: deny(func(d map[string]any) { delete(d, "reason") }), code: rules.CodeBadRule, path: "deny[0].reason"},
		{name: "serials not strings", env: deny(func(d map[string]any) { d["serials"] = []any{"A", 7} }), code: rules.CodeBadRule, path: "deny[0].serials"},
		{name: "serials not a list", env: deny(func(d map[string]any) { d["serials"] = "A" }), code: rules.CodeBadRule, path: "deny[0].serials"},
		{name: "empty serial", env: deny(func(d map[string]any) { d["serials"] = []any{"A", ""} }), code: rules.CodeBadRule, path: "deny[0].serials"},
		{name: "control character", env: deny(func(d map[string]any) { d["serials"] = []any{"A\u0007"} }), code: rules.CodeBadRule, path: "deny[0].serials"},
		{name: "lot without product", env: mutate(func(m map[string]any) {
			m["deny"] = []any{map[string]any{"lot": "L1", "reason": "recalled"}}
		}), code: rules.CodeBadRule, path: "deny[0]"},
		{name: "empty deny entry", env: mutate(func(m map[string]any) { m["deny"] = []any{map[string]any{"reason": "recalled"}} }),
			code: rules.CodeBadRule, path: "deny[0]"},
		{name: "bad duplicate policy", env: mutate(func(m map[string]any) { m["duplicates"].(map[string]any)["receive"] = "block" }),
			code: rules.CodeBadRule, path: "duplicates.receive"},
		{name: "unknown duplicate mode", env: mutate(func(m map[string]any) { m["duplicates"].(map[string]any)["recieve"] = "reject" }),
			code: rules.CodeBadRule, path: "duplicates.recieve"},
		{name: "deny entry of the wrong type", env: deny(func(d map[string]any) { d["gtin"] = 9506000134352 }), code: rules.CodeBadRule, path: "deny[0].gtin"},
		{name: "deny not a list", env: mutate(func(m map[string]any) { m["deny"] = map[string]any{} }), code: rules.CodeBadRule, path: "deny"},
		{name: "order policies disagree", env: mutate(func(m map[string]any) {
			m["expected"].([]any)[1].(map[string]any)["policy"] = "reject"
		}), code: rules.CodeBadRule, path: "expected[1].policy"},
		{name: "expected without order", env: mutate(func(m map[string]any) { delete(m["expected"].([]any)[0].(map[string]any), "order") }),
			code: rules.CodeBadRule, path: "expected[0].order"},
		{name: "bad scope", env: mutate(func(m map[string]any) { m["scope"] = "world" }), code: rules.CodeBadRule, path: "scope"},
		{name: "gateway scope without gateway", env: mutate(func(m map[string]any) { m["scope"] = "gateway" }), code: rules.CodeBadRule, path: "gateway"},
		{name: "bad gateway id", env: mutate(func(m map[string]any) { m["gateway"] = "gw 01" }), code: rules.CodeBadRule, path: "gateway"},
		{name: "version 0", env: mutate(func(m map[string]any) { m["version"] = 0 }), code: rules.CodeBadRule, path: "version"},
		{name: "version not an integer", env: mutate(func(m map[string]any) { m["version"] = 6.5 }), code: rules.CodeBadRule, path: "version"},
		{name: "bad issued", env: mutate(func(m map[string]any) { m["issued"] = "yesterday" }), code: rules.CodeBadRule, path: "issued"},
		{name: "unknown product policy", env: mutate(func(m map[string]any) { m["unknown_product"] = "deny" }), code: rules.CodeBadRule, path: "unknown_product"},

		// documents
		{name: "document kind unknown", env: documents(`{"kind":"invoice","pattern":"INV[0-9]+"}`), code: rules.CodeBadRule, path: "documents[1].kind"},
		{name: "document without kind", env: documents(`{"pattern":"X"}`), code: rules.CodeBadRule, path: "documents[1].kind"},
		{name: "document without pattern", env: documents(`{"kind":"order"}`), code: rules.CodeBadRule, path: "documents[1].pattern"},
		{name: "document pattern invalid", env: documents(`{"kind":"order","pattern":"PO-[0-9"}`), code: rules.CodeBadRule, path: "documents[1].pattern"},
		{name: "document pattern escaping its anchors", env: documents(`{"kind":"order","pattern":"A)|(.*"}`), code: rules.CodeBadRule, path: "documents[1].pattern"},
		{name: "document pattern too long", env: documents(`{"kind":"order","pattern":"` + strings.Repeat("a", 1025) + `"}`),
			code: rules.CodeBadRule, path: "documents[1].pattern"},
		{name: "document group misnamed", env: documents(`{"kind":"order","pattern":"PO-(?P<valeu>[0-9]+)"}`), code: rules.CodeBadRule, path: "documents[1].pattern"},
		{name: "document key invalid", env: documents(`{"kind":"location","pattern":"D[0-9]","key":"Dock"}`), code: rules.CodeBadRule, path: "documents[1].key"},
		{name: "document key too long", env: documents(`{"kind":"location","pattern":"D[0-9]","key":"` + strings.Repeat("k", 65) + `"}`),
			code: rules.CodeBadRule, path: "documents[1].key"},
		{name: "document key on a control code", env: documents(`{"kind":"close","pattern":"#CLOSE","key":"close"}`), code: rules.CodeBadRule, path: "documents[1].key"},
		{name: "document of the wrong type", env: documents(`{"kind":"order","pattern":7}`), code: rules.CodeBadRule, path: "documents[1].pattern"},
		{name: "document not an object", env: documents(`"PO-[0-9]+"`), code: rules.CodeBadRule, path: "documents[1]"},
		{name: "document unknown field", env: documents(`{"kind":"order","pattern":"X","value":"v"}`), code: rules.CodeBadRule, path: "documents[1].value"},
		{name: "documents not a list", env: raw(`"documents":{"kind":"order"}`), code: rules.CodeBadRule, path: "documents"},
		{name: "too many documents", env: documents(strings.Repeat(`{"kind":"order","pattern":"X"},`, 256) + `{"kind":"order","pattern":"X"}`),
			code: rules.CodeBadRule, path: "documents"},

		// expected quantities
		{name: "quantity 0", env: expected(`{"order":"O","gtin":"` + gtinA + `","quantity":0}`), code: rules.CodeBadRule, path: "expected[3].quantity"},
		{name: "quantity negative", env: expected(`{"order":"O","gtin":"` + gtinA + `","quantity":-2}`), code: rules.CodeBadRule, path: "expected[3].quantity"},
		{name: "quantity too large", env: expected(`{"order":"O","gtin":"` + gtinA + `","quantity":1000000001}`), code: rules.CodeBadRule, path: "expected[3].quantity"},
		{name: "quantity not an integer", env: expected(`{"order":"O","gtin":"` + gtinA + `","quantity":1.5}`), code: rules.CodeBadRule, path: "expected[3].quantity"},
		{name: "quantity a string", env: expected(`{"order":"O","gtin":"` + gtinA + `","quantity":"3"}`), code: rules.CodeBadRule, path: "expected[3].quantity"},
		{name: "quantity above the serials listed", env: expected(`{"order":"O","gtin":"` + gtinA + `","serials":["A","B"],"quantity":3}`),
			code: rules.CodeBadRule, path: "expected[3].quantity"},
		{name: "quantity without a product or serials", env: expected(`{"order":"O","quantity":3}`), code: rules.CodeBadRule, path: "expected[3]"},
		{name: "line with and without serials", env: expected(`{"order":"O","gtin":"` + gtinA + `","quantity":3},{"order":"O","gtin":"` + gtinA + `","serials":["A"]}`),
			code: rules.CodeBadRule, path: "expected[4]"},
		{name: "line adds up too far", env: expected(`{"order":"O","sku":"S","quantity":600000000},{"order":"O","sku":"S","quantity":600000000}`),
			code: rules.CodeBadRule, path: "expected[4].quantity"},

		// shipped
		{name: "shipped without product", env: shipped(`{"customer":"ACME","serials":["A"]}`), code: rules.CodeBadRule, path: "shipped[0]"},
		{name: "shipped gtin and sku", env: shipped(`{"gtin":"` + gtinA + `","sku":"S","serials":["A"]}`), code: rules.CodeBadRule, path: "shipped[0]"},
		{name: "shipped bad gtin", env: shipped(`{"gtin":"09506000134353","serials":["A"]}`), code: rules.CodeBadRule, path: "shipped[0].gtin"},
		{name: "shipped bad sku", env: shipped(`{"sku":"S\u0001","serials":["A"]}`), code: rules.CodeBadRule, path: "shipped[0].sku"},
		{name: "shipped bad customer", env: shipped(`{"customer":"AC\u0007ME","sku":"S","serials":["A"]}`), code: rules.CodeBadRule, path: "shipped[0].customer"},
		{name: "shipped bad order", env: shipped(`{"order":"` + strings.Repeat("o", 257) + `","sku":"S","serials":["A"]}`), code: rules.CodeBadRule, path: "shipped[0].order"},
		{name: "shipped without serials", env: shipped(`{"sku":"S"}`), code: rules.CodeBadRule, path: "shipped[0].serials"},
		{name: "shipped empty serials", env: shipped(`{"sku":"S","serials":[]}`), code: rules.CodeBadRule, path: "shipped[0].serials"},
		{name: "shipped serials not strings", env: shipped(`{"sku":"S","serials":["A",1]}`), code: rules.CodeBadRule, path: "shipped[0].serials"},
		{name: "shipped empty serial", env: shipped(`{"sku":"S","serials":["A",""]}`), code: rules.CodeBadRule, path: "shipped[0].serials"},
		{name: "shipped policy allow", env: shipped(`{"sku":"S","serials":["A"],"policy":"allow"}`), code: rules.CodeBadRule, path: "shipped[0].policy"},
		{name: "shipped policy unknown", env: shipped(`{"sku":"S","serials":["A"],"policy":"block"}`), code: rules.CodeBadRule, path: "shipped[0].policy"},
		{name: "shipped bad reason", env: shipped(`{"sku":"S","serials":["A"],"reason":"Not-Ours"}`), code: rules.CodeBadRule, path: "shipped[0].reason"},
		{name: "shipped reason too long", env: shipped(`{"sku":"S","serials":["A"],"reason":"` + strings.Repeat("r", 33) + `"}`), code: rules.CodeBadRule, path: "shipped[0].reason"},
		{name: "shipped reason of the engine", env: shipped(`{"sku":"S","serials":["A"],"reason":"duplicate"}`), code: rules.CodeBadRule, path: "shipped[0].reason"},
		{name: "shipped message too long", env: shipped(`{"sku":"S","serials":["A"],"message":"` + strings.Repeat("m", 257) + `"}`), code: rules.CodeBadRule, path: "shipped[0].message"},
		{name: "shipped entries disagree on policy", env: shipped(`{"customer":"C","sku":"S","serials":["A"]},{"customer":"C","sku":"S","serials":["B"],"policy":"warn"}`),
			code: rules.CodeBadRule, path: "shipped[1].policy"},
		{name: "shipped entries disagree on reason", env: shipped(`{"order":"O","sku":"S","serials":["A"],"reason":"counterfeit"},{"customer":"C","order":"O","sku":"S","serials":["B"],"reason":"not_ours"}`),
			code: rules.CodeBadRule, path: "shipped[1].reason"},
		{name: "shipped entries disagree on message", env: shipped(`{"sku":"S","serials":["A"],"message":"a"},{"sku":"S","serials":["B"],"message":"b"}`),
			code: rules.CodeBadRule, path: "shipped[1].message"},
		{name: "shipped of the wrong type", env: shipped(`{"sku":"S","serials":["A"],"customer":7}`), code: rules.CodeBadRule, path: "shipped[0].customer"},
		{name: "shipped unknown field", env: shipped(`{"sku":"S","serial":"A"}`), code: rules.CodeBadRule, path: "shipped[0].serial"},
		{name: "shipped not a list", env: raw(`"shipped":{"sku":"S"}`), code: rules.CodeBadRule, path: "shipped"},

		// returns
		{name: "already_returned unknown", env: raw(`"returns":{"already_returned":"block"}`), code: rules.CodeBadRule, path: "returns.already_returned"},
		{name: "already_returned not a string", env: raw(`"returns":{"already_returned":true}`), code: rules.CodeBadRule, path: "returns.already_returned"},
		{name: "returns unknown field", env: raw(`"returns":{"already_retuned":"warn"}`), code: rules.CodeBadRule, path: "returns.already_retuned"},
		{name: "returns not an object", env: raw(`"returns":"reject"`), code: rules.CodeBadRule, path: "returns"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}, Site: "dc-east", Gateway: "gw-01", MaxSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Load(goodEnv); err != nil {
				t.Fatal(err)
			}
			before := e.Current(rules.ScopeSite)
			set, err := e.Load(tc.env)
			if set != nil || err == nil {
				t.Fatalf("accepted: %v", set.Name())
			}
			var re *rules.Error
			if !errors.As(err, &re) || re.Code != tc.code || re.Path != tc.path {
				t.Errorf("error %v (%#v); want code %s path %q", err, re, tc.code, tc.path)
			}
			if rules.Code(err) != tc.code {
				t.Errorf("Code = %q", rules.Code(err))
			}
			if e.Current(rules.ScopeSite) != before || e.Version() != "site:5" || e.Current(rules.ScopeGateway) != nil {
				t.Errorf("the set in use changed: %s", e.Version())
			}
		})
	}
}

// Every bad rule is reported, with its path, not only the first.
func TestAllBadRules(t *testing.T) {
	m := baseSet()
	m["products"].([]any)[0].(map[string]any)["serial"].(map[string]any)["pattern"] = "("
	m["products"].([]any)[1].(map[string]any)["serial"].(map[string]any)["check"] = "nope"
	m["deny"].([]any)[2].(map[string]any)["reason"] = ""
	_, err := rules.Check(mustJSON(t, m))
	var es rules.Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("err = %v", err)
	}
	want := []string{"products[0].serial.pattern", "products[1].serial.check", "deny[2].reason"}
	for i, e := range es {
		if e.Path != want[i] || e.Code != rules.CodeBadRule {
			t.Errorf("error %d: %v", i, e)
		}
	}
	if !strings.Contains(err.Error(), "and 2 more") {
		t.Errorf("message %q", err)
	}
}

func TestDecodeVersion(t *testing.T) {
	env := signed(t, mustJSON(t, withVersion(5)), key(1))
	keys := []ed25519.PublicKey{pub(key(1))}
	for cur, want := range map[int64]string{0: "", 4: "", 5: rules.CodeNotNewer, 6: rules.CodeNotNewer} {
		if _, err := rules.Decode(env, keys, cur); rules.Code(err) != want {
			t.Errorf("current %d: %v, want %q", cur, err, want)
		}
	}
	// Versions beyond 32 bits work on 32-bit gateways too.
	env = signed(t, mustJSON(t, withVersion(202607011200)), key(1))
	if set, err := rules.Decode(env, keys, 5); err != nil || set.Version != 202607011200 {
		t.Errorf("large version: %v", err)
	}
}

func TestDecodeTooLarge(t *testing.T) {
	big := make([]byte, rules.MaxSize+1)
	if _, err := rules.DecodeUnsigned(big, 0); rules.Code(err) != rules.CodeTooLarge {
		t.Errorf("err = %v", err)
	}
}

// Restore at boot takes the persisted set again, and checks it against the
// keys configured now.
func TestRestore(t *testing.T) {
	env := signed(t, mustJSON(t, withVersion(5)), key(1))
	e, _ := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}})
	if _, err := e.Restore(env); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Restore(env); err != nil {
		t.Errorf("restoring the set in use: %v", err)
	}
	if _, err := e.Load(env); rules.Code(err) != rules.CodeNotNewer {
		t.Errorf("Load of the set in use: %v", err)
	}
	if _, err := e.Restore(signed(t, mustJSON(t, withVersion(4)), key(1))); rules.Code(err) != rules.CodeNotNewer {
		t.Errorf("Restore of an older set: %v", err)
	}
	rotated, _ := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(2))}})
	if _, err := rotated.Restore(env); rules.Code(err) != rules.CodeBadSignature || rotated.Version() != "none" {
		t.Errorf("after key rotation: %v, %s", err, rotated.Version())
	}
}

func TestSign(t *testing.T) {
	if _, err := rules.Sign(mustJSON(t, baseSet()), key(1)[:10]); err == nil {
		t.Error("short key accepted")
	}
	m := baseSet()
	m["products"].([]any)[0].(map[string]any)["serial"].(map[string]any)["pattern"] = "("
	if _, err := rules.Sign(mustJSON(t, m), key(1)); rules.Code(err) != rules.CodeBadRule {
		t.Errorf("broken set signed: %v", err)
	}
	if _, err := rules.Unsigned([]byte(`{"schema":3}`)); rules.Code(err) != rules.CodeBadSchema {
		t.Errorf("broken set wrapped: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	p, err := rules.ParsePublicKey(rules.KeyID(pub(key(3))))
	if err != nil || !p.Equal(pub(key(3))) {
		t.Errorf("public: %v", err)
	}
	for _, s := range []string{b64(key(3).Seed()), b64(key(3))} {
		k, err := rules.ParsePrivateKey(s)
		if err != nil || !k.Equal(key(3)) {
			t.Errorf("private %q: %v", s, err)
		}
	}
	for _, s := range []string{"!", b64([]byte("short"))} {
		if _, err := rules.ParsePublicKey(s); err == nil {
			t.Errorf("public %q accepted", s)
		}
		if _, err := rules.ParsePrivateKey(s); err == nil {
			t.Errorf("private %q accepted", s)
		}
	}
	if _, err := rules.New(rules.Options{Keys: []ed25519.PublicKey{[]byte("short")}}); err == nil {
		t.Error("New accepted a short key")
	}
}

// The shipped example is a valid set, and it judges as documented.
func TestExample(t *testing.T) {
	b, err := os.ReadFile("testdata/example.json")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Check(b)
	if err != nil {
		t.Fatal(err)
	}
	if set.Name() != "site:42" {
		t.Errorf("name %s", set.Name())
	}
	env, err := rules.Sign(b, key(1))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := rules.New(rules.Options{Keys: []ed25519.PublicKey{pub(key(1))}, Site: "dc-east"})
	if _, err := e.Load(env); err != nil {
		t.Fatal(err)
	}
	for data, want := range map[string]string{
		gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"):   "accepted",
		gs1Scan(gtinA, "270131", "ABC1", "RECALL0001"): "rejected",
		"SN-STOLEN-77": "rejected",
		gtinUnknown:    "warning",
	} {
		s := scan("", data, "transfer", nil)
		e.Validate(s)
		if s.Verdict != want {
			t.Errorf("%q: %s %v", data, s.Verdict, codes(s.Reasons))
		}
	}
}
