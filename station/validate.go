package station

import (
	"errors"
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

// Chain runs validators in order and stops at the first rejection: the
// built-in length rule first, then the rule engine.
type Chain []Validator

// Validate implements Validator.
func (c Chain) Validate(s *Scan) {
	for _, v := range c {
		v.Validate(s)
		if s.Verdict == Rejected {
			return
		}
	}
}

// Record passes a stored scan to every validator that remembers scans
// (duplicate rules).
func (c Chain) Record(s *Scan) error {
	var errs []error
	for _, v := range c {
		if r, ok := v.(Recorder); ok {
			errs = append(errs, r.Record(s))
		}
	}
	return errors.Join(errs...)
}

// Recorder is a Validator that remembers the scans that were stored, for
// duplicate rules. Record is called only after the scan's commit: a scan
// that could not be stored is rescanned, and must not count as seen.
type Recorder interface {
	Record(s *Scan) error
}
