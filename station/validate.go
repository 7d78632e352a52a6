package station

import (
	"fmt"
	"unicode/utf8"
)

// LengthRule is the built-in validator: it accepts any printable scan whose
// length, in characters, lies within [Min, Max]. The rule engine replaces
// it once rule sets exist.
type LengthRule struct {
	Min, Max int
}

// Version names the built-in rule set in events.
func (LengthRule) Version() string { return "builtin-length-1" }

// Validate implements Validator.
func (r LengthRule) Validate(s *Scan) {
	s.RulesVersion = r.Version()
	n := utf8.RuneCount(s.Data)
	switch {
	case n < r.Min:
		reject(s, "too_short", fmt.Sprintf("%d characters, at least %d required", n, r.Min))
	case r.Max > 0 && n > r.Max:
		reject(s, "too_long", fmt.Sprintf("%d characters, at most %d allowed", n, r.Max))
	default:
		s.Verdict = Accepted
	}
}
