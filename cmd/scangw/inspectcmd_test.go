package main

import "testing"

func TestInspectWithRules(t *testing.T) {
	in, rest, err := newInspector([]string{"--rules", "../../station/rules/testdata/example.json", "SN-STOLEN-77"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 1 {
		t.Fatalf("codes left: %q", rest)
	}
	r := in.Inspect("SN-STOLEN-77")
	if r.Verdict != "rejected" || len(r.Reasons) == 0 || r.Reasons[0].Code != "denied.stolen" || r.RulesVersion != "site:42" {
		t.Fatalf("judged %+v", r)
	}
	if ok := in.Inspect("]d2010950600013435221ABC123\x1d10L1\x1d17351231"); ok.Verdict == "" {
		t.Fatalf("no verdict for a GS1 code: %+v", ok)
	}
	if _, _, err := newInspector([]string{"--rules", "/nonexistent.json"}); err == nil {
		t.Fatal("missing rules file accepted")
	}
	plain, rest, _ := newInspector([]string{"X"})
	if plain.Judge != nil || len(rest) != 1 {
		t.Fatal("no --rules: no judge expected")
	}
}
