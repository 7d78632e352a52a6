package serials

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/scangw/scangw/station/wire"
)

var seedTemplates = []string{
	"{site}-{yy}{ddd}-{seq:6}{check:mod37-2}",
	"{gtin}.{seq:8}",
	"SN{seq:9}{check:luhn}",
	"{site}.{yy}{mm}{dd}{seq:7}{check:gs1-pair}",
	"{site}{gateway}{station}{seq:2}{check:mod11-2}",
	"{lot}/{expiry}/{seq:3}{check:gs1}",
	"{site}-{seq:4}-{lot}",
	"{{{seq:3}}}",
	"{yyyy}{seq:4}",
	"{seq:6}{check:mod43}",
	"SN-{sq:6}",
	"{seq:2}-{seq:3}",
	"SN{seq:6",
	"}",
}

// FuzzParse: no template makes Parse panic, every error is an *Error
// inside the template, and a template that parses renders a serial that
// Check accepts with the counter it was rendered with: always when the
// ids are given, and when they are not unless the shape is ambiguous.
func FuzzParse(f *testing.F) {
	for _, s := range seedTemplates {
		f.Add(s, false, uint8(0), uint64(42))
		f.Add(s, true, uint8(60), uint64(999999999))
	}
	f.Fuzz(func(t *testing.T, tmpl string, ascii bool, maxLen uint8, seq uint64) {
		// At most 99: the GS1 check pair covers at most 97 characters.
		opts := ParseOptions{MaxLen: int(maxLen % 100), ASCII: ascii}
		tp, err := opts.Parse(tmpl)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Offset < 0 || e.Offset > len(tmpl) || e.Msg == "" {
				t.Fatalf("bad error %#v", err)
			}
			return
		}
		if tp.String() != tmpl {
			t.Fatalf("String = %q", tp.String())
		}
		v := values
		v.Seq = seq % (tp.MaxSeq() + 1)
		s, err := tp.Render(v)
		if errors.Is(err, errTooLong) {
			return // the ids of values are longer than the limit allows
		}
		if err != nil {
			t.Fatalf("Render: %v", err)
		}
		if len(s) > tp.maxLen {
			t.Fatalf("Render = %q, over %d characters", s, tp.maxLen)
		}
		for i := 0; i < len(s); i++ {
			if !tp.charset[s[i]] {
				t.Fatalf("Render = %q: character %q at %d", s, s[i], i)
			}
		}
		if got, err := tp.Check(s, v); err != nil || got != v.Seq {
			t.Fatalf("Check(%q, values) = %d, %v; want %d", s, got, err, v.Seq)
		}
		got, err := tp.Check(s, Values{})
		if err != nil && !strings.Contains(err.Error(), "more than one way") || err == nil && got != v.Seq {
			t.Fatalf("Check(%q) = %d, %v; want %d", s, got, err, v.Seq)
		}
	})
}

// FuzzParseGrant: no args make ParseGrant panic; what it accepts is a
// valid grant that survives a trip through encoding/json, and what it
// refuses leaves a zero Grant and a message naming the command.
func FuzzParseGrant(f *testing.F) {
	for _, tc := range grantCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, args []byte) {
		g, err := ParseGrant(args)
		if err != nil {
			if g != (Grant{}) || !strings.HasPrefix(err.Error(), "grant_serials: ") {
				t.Fatalf("ParseGrant = %+v, %v", g, err)
			}
			return
		}
		if !wire.ValidID(g.Scheme) || g.From > g.To || g.To > maxNumber {
			t.Fatalf("accepted %+v", g)
		}
		b, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseGrant(b); err != nil || back != g {
			t.Fatalf("round trip %s = %+v, %v", b, back, err)
		}
	})
}
