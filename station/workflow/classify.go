package workflow

import (
	"fmt"
	"regexp"

	"github.com/scangw/scangw/station/wire"
)

// NewPattern compiles expr anchored at both ends, since a pattern names a
// read only when it matches the whole of it.
func NewPattern(kind, expr, key string) (Pattern, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return Pattern{}, fmt.Errorf("document pattern %q: %w", expr, err)
	}
	return Pattern{Kind: kind, Match: re, Key: key}, nil
}

// BuiltinPatterns classify by GS1 content rather than by expression: an
// SSCC (AI 00) is a shipment, a GLN (AI 414, with 254) a location.
func BuiltinPatterns() []Pattern {
	return []Pattern{{Kind: wire.DocShipment}, {Kind: wire.DocLocation}}
}

// Classify reports whether a read is a document: its kind, its value,
// and the context key it sets ("" for control codes). Patterns with an
// expression are tried in order, the config's then the rules'; those
// without (BuiltinPatterns) after all of them.
func Classify(cfg Config, rules Rules, raw string, fields map[string]string) (kind, value, key string, ok bool) {
	lists := [][]Pattern{cfg.Documents, nil}
	if rules != nil {
		lists[1] = rules.Documents()
	}
	var builtin []Pattern
	for _, list := range lists {
		for _, p := range list {
			if p.Match == nil {
				builtin = append(builtin, p)
				continue
			}
			loc := p.Match.FindStringSubmatchIndex(raw)
			if loc == nil || loc[0] != 0 || loc[1] != len(raw) {
				continue
			}
			value = raw
			if i := p.Match.SubexpIndex("value"); i >= 0 {
				value = ""
				if loc[2*i] >= 0 {
					value = raw[loc[2*i]:loc[2*i+1]]
				}
			}
			return p.Kind, value, contextKey(p), true
		}
	}
	for _, p := range builtin {
		var v string
		switch p.Kind {
		case wire.DocShipment:
			v = fields["sscc"]
		case wire.DocLocation:
			v = gln(raw)
		}
		if v != "" {
			return p.Kind, v, contextKey(p), true
		}
	}
	return "", "", "", false
}

func contextKey(p Pattern) string {
	switch {
	case p.Kind == wire.DocClose || p.Kind == wire.DocCancel:
		return ""
	case p.Key != "":
		return p.Key
	}
	return p.Kind
}

// A GLN and its optional extension (AI 82 characters, at most 20): as an
// element string (FNC1 sent as GS), in brackets, or as a Digital Link.
var glnForms = []*regexp.Regexp{
	regexp.MustCompile("^\x1D?414([0-9]{13})(?:\x1D?254([!\"%-/0-9:-?A-Z_a-z]{1,20}))?$"),
	regexp.MustCompile(`^\(414\)([0-9]{13})(?:\(254\)([!"%-'*-/0-9:-?A-Z_a-z]{1,20}))?$`),
	regexp.MustCompile(`^https?://[^/?#]+(?:/[^?#]*)?/414/([0-9]{13})(?:/254/([^/?#]{1,20}))?/?(?:[?#].*)?$`),
}

// gln returns the location a read names ("<GLN>" or "<GLN>(254)<ext>"),
// or "" when it is not a GLN with a right check digit.
func gln(raw string) string {
	for _, re := range glnForms {
		m := re.FindStringSubmatch(raw)
		if m == nil || !checkDigit(m[1]) {
			continue
		}
		if m[2] != "" {
			return m[1] + "(254)" + m[2]
		}
		return m[1]
	}
	return ""
}

// checkDigit verifies the GS1 mod-10 check digit of a string of digits.
func checkDigit(d string) bool {
	sum := 0
	for i := len(d) - 2; i >= 0; i-- {
		n := int(d[i] - '0')
		if (len(d)-2-i)%2 == 0 {
			n *= 3
		}
		sum += n
	}
	return int(d[len(d)-1]-'0') == (10-sum%10)%10
}
