package rules_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/checkdigit"
	"github.com/scangw/scangw/station/rules"
)

func TestValidateReasons(t *testing.T) {
	hibcGood := hibcCode("+A99912345/$$+3270131SER123")
	mod37, _ := checkdigit.Mod37Radix2("P21234567")
	pump := "P21234567" + string(mod37)
	luhnOK := "12345674" // Luhn("1234567") = 4

	tests := []struct {
		name      string
		sym, data string
		mode      string
		ctx       map[string]string
		unsynced  bool
		seen      map[string]string // key → last mode, marked before the scan
		verdict   string
		codes     []string
		key       string
	}{
		{name: "accepted", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), verdict: station.Accepted,
			key: "gs1:(01)" + gtinA + "(21)SERIAL01"},
		{name: "bracketed without symbology", data: "(01)" + gtinA + "(17)270131(10)ABC1(21)SERIAL01", verdict: station.Accepted},
		{name: "element string without symbology", data: gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), verdict: station.Accepted},
		{name: "digital link", data: "https://id.example.com/01/" + gtinA + "/10/ABC1/21/SERIAL01?17=270131", verdict: station.Accepted,
			key: "gs1:(01)" + gtinA + "(21)SERIAL01"},
		{name: "gs1 bad check digit", sym: "]d2", data: gs1Scan("09506000134353", "270131", "ABC1", "SERIAL01"),
			verdict: station.Rejected, codes: []string{"gs1.bad_check_digit"}},
		{name: "gs1 bad date", sym: "]C1", data: gs1Scan(gtinA, "271332", "ABC1", "SERIAL01"),
			verdict: station.Rejected, codes: []string{"gs1.bad_date"}},
		{name: "gs1 pairing", data: "(21)ABC", verdict: station.Rejected, codes: []string{"gs1.missing_required"}},
		{name: "digital link bad check digit", data: "https://id.example.com/01/09506000134353/21/SERIAL01",
			verdict: station.Rejected, codes: []string{"gs1.bad_check_digit"}},
		{name: "hibc accepted", data: hibcGood, verdict: station.Accepted, key: "hibc:A9991234/SER123"},
		{name: "hibc bad check character", data: hibcGood[:len(hibcGood)-1] + "Q",
			verdict: station.Rejected, codes: []string{"hibc.bad_check_char"}},
		{name: "hibc expired", data: hibcCode("+A99912345/$$+3250131SER123"), verdict: station.Rejected, codes: []string{rules.ReasonExpired}},
		{name: "hibc missing serial", data: hibcCode("+A99912345/$$3270131LOT9"), verdict: station.Rejected, codes: []string{rules.ReasonMissingSerial}},
		{name: "hibc counterfeit", data: hibcCode("+A99912345/$$+3270131FAKE0001"), verdict: station.Rejected, codes: []string{"denied.counterfeit"}},
		{name: "unknown product", data: gtinUnknown[1:], verdict: station.Warning, codes: []string{rules.ReasonUnknownProduct}},
		{name: "missing serial", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", ""), verdict: station.Rejected, codes: []string{rules.ReasonMissingSerial}},
		{name: "missing lot", sym: "]d2", data: gs1Scan(gtinA, "270131", "", "SERIAL01"), verdict: station.Rejected, codes: []string{rules.ReasonMissingLot}},
		{name: "missing expiry", sym: "]d2", data: gs1Scan(gtinA, "", "ABC1", "SERIAL01"), verdict: station.Rejected, codes: []string{rules.ReasonMissingExpiry}},
		{name: "serial too short", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "AB1"), verdict: station.Rejected, codes: []string{rules.ReasonSerialTooShort}},
		{name: "serial too long", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "ABCDEFGHIJ012"), verdict: station.Rejected, codes: []string{rules.ReasonSerialTooLong}},
		{name: "serial pattern", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "abcdef"), verdict: station.Rejected, codes: []string{rules.ReasonSerialPattern}},
		{name: "serial charset", sym: "]d2", data: gs1Scan(gtinB, "", "", "1234567A"), verdict: station.Rejected,
			codes: []string{rules.ReasonSerialCharset, rules.ReasonSerialCheckDigit}},
		{name: "serial check digit", sym: "]d2", data: gs1Scan(gtinB, "", "", "12345678"), verdict: station.Rejected, codes: []string{rules.ReasonSerialCheckDigit}},
		{name: "serial check digit good", sym: "]d2", data: gs1Scan(gtinB, "", "", luhnOK), verdict: station.Accepted},
		{name: "expired", sym: "]d2", data: gs1Scan(gtinA, "260709", "ABC1", "SERIAL01"), verdict: station.Rejected, codes: []string{rules.ReasonExpired}},
		{name: "expires today is not expired", sym: "]d2", data: gs1Scan(gtinA, "260710", "ABC1", "SERIAL01"), verdict: station.Warning,
			codes: []string{rules.ReasonExpiresSoon}},
		{name: "expired, day 00 is the month's end", sym: "]d2", data: gs1Scan(gtinA, "260600", "ABC1", "SERIAL01"), verdict: station.Rejected,
			codes: []string{rules.ReasonExpired}},
		{name: "expired only warns by policy", sym: "]d2", data: gs1Scan(gtinB, "250101", "", luhnOK), verdict: station.Warning, codes: []string{rules.ReasonExpired}},
		{name: "expired, clock unsynced", sym: "]d2", data: gs1Scan(gtinA, "260630", "ABC1", "SERIAL01"), unsynced: true,
			verdict: station.Warning, codes: []string{rules.ReasonExpiredClockUnsynced}},
		{name: "expires soon", sym: "]d2", data: gs1Scan(gtinA, "260801", "ABC1", "SERIAL01"), verdict: station.Warning, codes: []string{rules.ReasonExpiresSoon}},
		{name: "expires after the warning window", sym: "]d2", data: gs1Scan(gtinA, "260811", "ABC1", "SERIAL01"), verdict: station.Accepted},
		{name: "denied serial", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "RECALL0002"), verdict: station.Rejected, codes: []string{"denied.recalled"}},
		{name: "denied lot", sym: "]d2", data: gs1Scan(gtinA, "270131", "L2309", "SERIAL01"), verdict: station.Rejected, codes: []string{"denied.recalled"}},
		{name: "denied serial of another product is fine", sym: "]d2", data: gs1Scan(gtinB, "", "", luhnOK), verdict: station.Accepted},
		{name: "denied serial of any product", data: "SN-STOLEN-77", verdict: station.Rejected, codes: []string{"denied.stolen"}},
		{name: "denied product", data: gtinBanned, verdict: station.Rejected, codes: []string{"denied.withdrawn"}},
		{name: "plain with sku context", data: pump, ctx: map[string]string{"sku": "PUMP-200"}, verdict: station.Accepted, key: "plain:" + pump},
		{name: "plain with sku context, bad check", data: "P212345670", ctx: map[string]string{"sku": "PUMP-200"}, verdict: station.Rejected,
			codes: []string{rules.ReasonSerialCheckDigit}},
		{name: "plain with unknown sku", data: "X1", ctx: map[string]string{"sku": "NOPE"}, verdict: station.Warning, codes: []string{rules.ReasonUnknownProduct}},
		{name: "plain without rules", data: "SN-12345", verdict: station.Accepted, key: "plain:SN-12345"},
		{name: "sscc", sym: "]C1", data: "00" + gtin("10614141123456789"), verdict: station.Accepted, key: "gs1:(00)" + gtin("10614141123456789")},
		{name: "duplicate receive", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), mode: "receive",
			seen: map[string]string{"gs1:(01)" + gtinA + "(21)SERIAL01": "receive"}, verdict: station.Rejected, codes: []string{rules.ReasonDuplicate}},
		{name: "received again after it shipped", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), mode: "receive",
			seen: map[string]string{"gs1:(01)" + gtinA + "(21)SERIAL01": "ship"}, verdict: station.Accepted},
		{name: "plain duplicate receive", data: "SN-12345", mode: "receive", seen: map[string]string{"plain:SN-12345": "receive"},
			verdict: station.Rejected, codes: []string{rules.ReasonDuplicate}},
		{name: "ship never received", data: "SN-12345", mode: "ship", verdict: station.Rejected, codes: []string{rules.ReasonNotReceived}},
		{name: "ship received", data: "SN-12345", mode: "ship", seen: map[string]string{"plain:SN-12345": "receive"}, verdict: station.Accepted},
		{name: "ship twice", data: "SN-12345", mode: "ship", seen: map[string]string{"plain:SN-12345": "ship"}, verdict: station.Rejected,
			codes: []string{rules.ReasonDuplicate, rules.ReasonNotReceived}},
		{name: "count twice is allowed", data: "SN-12345", mode: "count", seen: map[string]string{"plain:SN-12345": "count"}, verdict: station.Accepted},
		{name: "no key, no duplicate check", data: gtinUnknown[1:], mode: "ship", verdict: station.Warning,
			codes: []string{rules.ReasonUnknownProduct}},
		{name: "expected serial", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "ABC124"), ctx: map[string]string{"order": "PO-1234"}, verdict: station.Accepted},
		{name: "expected serial of any product", data: "SN-0001", ctx: map[string]string{"order": "PO-1234"}, verdict: station.Accepted},
		{name: "unexpected serial", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "ABC999"), ctx: map[string]string{"order": "PO-1234"},
			verdict: station.Warning, codes: []string{rules.ReasonUnexpectedSerial}},
		{name: "expected product", sym: "]d2", data: gs1Scan(gtinB, "", "", luhnOK), ctx: map[string]string{"order": "PO-9"}, verdict: station.Accepted},
		{name: "unexpected product rejects by policy", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "ABC124"), ctx: map[string]string{"order": "PO-9"},
			verdict: station.Rejected, codes: []string{rules.ReasonUnexpectedSerial}},
		{name: "order without expectations", sym: "]d2", data: gs1Scan(gtinA, "270131", "ABC1", "ABC999"), ctx: map[string]string{"order": "PO-77"},
			verdict: station.Accepted},
		{name: "several findings", sym: "]d2", data: gs1Scan(gtinA, "260801", "L2309", "AB1"), ctx: map[string]string{"order": "PO-1234"},
			verdict: station.Rejected, codes: []string{rules.ReasonSerialTooShort, rules.ReasonExpiresSoon, "denied.recalled", rules.ReasonUnexpectedSerial}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := rules.NewMemorySeen(100)
			for k, m := range tc.seen {
				seen.Mark(k, m, scanTime.Add(-time.Hour))
			}
			e := engine(t, seen)
			mode := tc.mode
			if mode == "" {
				mode = "transfer"
			}
			s := scan(tc.sym, tc.data, mode, tc.ctx)
			s.ClockSynced = !tc.unsynced
			j := e.Judge(s)
			e.Validate(s)
			if s.Verdict != tc.verdict || !slices.Equal(codes(s.Reasons), append([]string{}, tc.codes...)) {
				t.Errorf("verdict %s, reasons %v; want %s, %v%s", s.Verdict, codes(s.Reasons), tc.verdict, tc.codes, fmtReasons(s.Reasons))
			}
			if j.Verdict != s.Verdict || !slices.Equal(j.Reasons, s.Reasons) {
				t.Errorf("Judge says %s %v, Validate %s %v", j.Verdict, j.Reasons, s.Verdict, s.Reasons)
			}
			if s.RulesVersion != "site:1" {
				t.Errorf("RulesVersion = %q", s.RulesVersion)
			}
			if tc.key != "" && j.Key != tc.key {
				t.Errorf("key = %q, want %q", j.Key, tc.key)
			}
			for _, r := range s.Reasons {
				if r.Message == "" {
					t.Errorf("reason %s has no message", r.Code)
				}
			}
		})
	}
}

func TestFields(t *testing.T) {
	e := engine(t, nil)
	j := e.Judge(scan("]d2", gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), "receive", nil))
	want := map[string]string{"scheme": "gs1", "gtin": gtinA, "lot": "ABC1", "serial": "SERIAL01", "expiry": "2027-01-31"}
	if !mapsEqual(j.Fields, want) {
		t.Errorf("fields = %v, want %v", j.Fields, want)
	}
	j = e.Judge(scan("", hibcCode("+A99912345/$$+3270131SER123"), "receive", nil))
	want = map[string]string{"scheme": "hibc", "sku": "A9991234", "lic": "A999", "pcn": "1234", "serial": "SER123", "expiry": "2027-01-31"}
	if !mapsEqual(j.Fields, want) {
		t.Errorf("fields = %v, want %v", j.Fields, want)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Without any set the engine still rejects what is not well formed.
func TestNoRuleSet(t *testing.T) {
	e, err := rules.New(rules.Options{Keys: []ed25519PublicKey{pub(key(1))}})
	if err != nil {
		t.Fatal(err)
	}
	s := scan("]d2", gs1Scan("09506000134353", "270131", "ABC1", "S1"), "receive", nil)
	e.Validate(s)
	if s.Verdict != station.Rejected || !slices.Equal(codes(s.Reasons), []string{"gs1.bad_check_digit"}) || s.RulesVersion != "none" {
		t.Errorf("got %s %v %q", s.Verdict, codes(s.Reasons), s.RulesVersion)
	}
	s = scan("]d2", gs1Scan(gtinA, "200101", "RECALL", "RECALL0001"), "receive", nil)
	e.Validate(s)
	if s.Verdict != station.Accepted || len(s.Reasons) != 0 {
		t.Errorf("got %s %v", s.Verdict, s.Reasons)
	}
}

// A verdict the station already gave is kept, and only made worse.
func TestValidateKeepsEarlierReasons(t *testing.T) {
	e := engine(t, nil)
	s := scan("", "SN-12345", "receive", nil)
	s.Verdict, s.Reasons = station.Rejected, []station.Reason{{Code: "too_long", Message: "x"}}
	e.Validate(s)
	if s.Verdict != station.Rejected || !slices.Equal(codes(s.Reasons), []string{"too_long"}) {
		t.Errorf("got %s %v", s.Verdict, codes(s.Reasons))
	}
}

// An unsynchronised clock that says 1970 is not taken earlier than the
// newest set was issued: the date is read in the right century, and the
// unit is not called expired.
func TestUnsyncedClockFloor(t *testing.T) {
	e := engine(t, nil)
	s := scan("]d2", gs1Scan(gtinA, "270131", "ABC1", "SERIAL01"), "receive", nil)
	s.Time, s.ClockSynced = time.Unix(0, 0), false
	e.Validate(s)
	if s.Verdict != station.Accepted {
		t.Errorf("got %s %v", s.Verdict, fmtReasons(s.Reasons))
	}
	// Expired before the set was issued: still only a warning.
	s = scan("]d2", gs1Scan(gtinA, "260101", "ABC1", "SERIAL01"), "receive", nil)
	s.Time, s.ClockSynced = time.Unix(0, 0), false
	e.Validate(s)
	if s.Verdict != station.Warning || !slices.Equal(codes(s.Reasons), []string{rules.ReasonExpiredClockUnsynced}) {
		t.Errorf("got %s %v", s.Verdict, fmtReasons(s.Reasons))
	}
}

// Record marks what moved, after it was stored; rejected scans do not move.
func TestRecord(t *testing.T) {
	seen := rules.NewMemorySeen(10)
	e := engine(t, seen)
	s := scan("", "SN-12345", "receive", nil)
	e.Validate(s)
	if err := e.Record(s); err != nil {
		t.Fatal(err)
	}
	if m, at, ok := seen.Seen("plain:SN-12345"); !ok || m != "receive" || !at.Equal(scanTime) {
		t.Errorf("seen = %q %v %v", m, at, ok)
	}
	again := scan("", "SN-12345", "receive", nil)
	e.Validate(again)
	if again.Verdict != station.Rejected || again.Reasons[0].Code != rules.ReasonDuplicate {
		t.Errorf("second receive: %s %v", again.Verdict, codes(again.Reasons))
	}
	if err := e.Record(again); err != nil || seen.Len() != 1 {
		t.Errorf("rejected scan recorded: %v, len %d", err, seen.Len())
	}
	bad := scan("]d2", gs1Scan("09506000134353", "270131", "ABC1", "S1"), "receive", nil)
	bad.Verdict = station.Accepted // even if the caller got it wrong, a malformed scan has no key
	if err := e.Record(bad); err != nil || seen.Len() != 1 {
		t.Errorf("malformed scan recorded: %v, len %d", err, seen.Len())
	}
}

// A held scan counts as seen while it is being stored: the scan judged
// right behind it (the same scanner's next frame) is a duplicate of it. A
// hold released unstored is forgotten; one released stored is recorded.
func TestHold(t *testing.T) {
	seen := rules.NewMemorySeen(10)
	e := engine(t, seen)
	first := scan("", "SN-777", "receive", nil)
	e.Validate(first)
	release := e.Hold(first)
	behind := scan("", "SN-777", "receive", nil)
	e.Validate(behind)
	if behind.Verdict != station.Rejected || behind.Reasons[0].Code != rules.ReasonDuplicate {
		t.Fatalf("judged behind a held scan: %s %v", behind.Verdict, codes(behind.Reasons))
	}
	if seen.Len() != 0 {
		t.Fatal("held scan written to the seen index before it was stored")
	}
	if err := release(false); err != nil {
		t.Fatal(err)
	}
	again := scan("", "SN-777", "receive", nil)
	e.Validate(again)
	if again.Verdict != station.Accepted || seen.Len() != 0 {
		t.Fatalf("after an unstored release: %s %v, seen %d", again.Verdict, codes(again.Reasons), seen.Len())
	}
	// Two holds of one key: releasing one keeps the other.
	r1, r2 := e.Hold(again), e.Hold(again)
	r1(false)
	probe := scan("", "SN-777", "receive", nil)
	if e.Validate(probe); probe.Verdict != station.Rejected {
		t.Fatalf("second hold lost with the first: %s", probe.Verdict)
	}
	if err := r2(true); err != nil || seen.Len() != 1 {
		t.Fatalf("stored release: %v, seen %d", err, seen.Len())
	}
	if m, _, ok := seen.Seen("plain:SN-777"); !ok || m != "receive" {
		t.Fatalf("seen %q %v", m, ok)
	}
}

// Both scopes apply; the stricter finding wins; versions are per scope.
func TestSiteAndGatewaySets(t *testing.T) {
	e := engine(t, nil)
	gw := map[string]any{
		"schema": 1, "version": 7, "issued": "2026-06-02T00:00:00Z", "scope": "gateway", "gateway": "gw-01",
		"deny": []any{map[string]any{"serial": "SN-12345", "reason": "quarantined"}},
	}
	env, err := rules.Sign(mustJSON(t, gw), key(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Load(env); err != nil {
		t.Fatal(err)
	}
	if v := e.Version(); v != "site:1,gateway:7" {
		t.Errorf("Version = %q", v)
	}
	s := scan("", "SN-12345", "receive", nil)
	e.Validate(s)
	if s.Verdict != station.Rejected || !slices.Equal(codes(s.Reasons), []string{"denied.quarantined"}) || s.RulesVersion != "site:1,gateway:7" {
		t.Errorf("got %s %v %q", s.Verdict, codes(s.Reasons), s.RulesVersion)
	}
	// The site's rules still apply.
	s = scan("", "SN-STOLEN-77", "receive", nil)
	e.Validate(s)
	if s.Verdict != station.Rejected {
		t.Errorf("site deny list lost: %s", s.Verdict)
	}
	// A site set of version 2 is newer for its scope, although 2 < 7.
	env, _ = rules.Sign(mustJSON(t, withVersion(2)), key(1))
	if _, err := e.Load(env); err != nil {
		t.Fatal(err)
	}
	if v := e.Version(); v != "site:2,gateway:7" {
		t.Errorf("Version = %q", v)
	}
}

// Sets are swapped whole while scans are judged: every scan is judged by
// exactly one version, and its verdict fits that version.
func TestConcurrentSwap(t *testing.T) {
	e := engine(t, nil)
	// Even versions deny SN-SWAP, odd ones do not.
	envs := map[int][]byte{}
	for v := 2; v <= 40; v++ {
		m := withVersion(v)
		if v%2 == 0 {
			m["deny"] = append(m["deny"].([]any), map[string]any{"serial": "SN-SWAP", "reason": "swap"})
		}
		env, err := rules.Sign(mustJSON(t, m), key(1))
		if err != nil {
			t.Fatal(err)
		}
		envs[v] = env
	}
	var (
		wg   sync.WaitGroup
		stop atomic.Bool
		n    atomic.Int64
	)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				s := scan("", "SN-SWAP", "receive", nil)
				e.Validate(s)
				var v int
				if _, err := fmtSscan(s.RulesVersion, &v); err != nil {
					t.Errorf("RulesVersion %q: %v", s.RulesVersion, err)
					return
				}
				denied := s.Verdict == station.Rejected
				if denied != (v%2 == 0) {
					t.Errorf("version %d judged %s %v", v, s.Verdict, codes(s.Reasons))
					return
				}
				n.Add(1)
			}
		})
	}
	for v := 2; v <= 40; v++ {
		if _, err := e.Load(envs[v]); err != nil {
			t.Fatal(err)
		}
		// Refused loads in between change nothing.
		if _, err := e.Load(envs[v]); rules.Code(err) != rules.CodeNotNewer {
			t.Errorf("reload of %d: %v", v, err)
		}
		time.Sleep(time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if e.Version() != "site:40" || n.Load() == 0 {
		t.Errorf("version %s after %d scans", e.Version(), n.Load())
	}
}
