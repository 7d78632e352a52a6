package station

import (
	"errors"
	"fmt"
	"github.com/scangw/scangw/station/workflow"
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

// Hold holds s in every validator that judges scans by the ones before
// them (duplicate rules).
func (c Chain) Hold(s *Scan) func(stored bool) error {
	var releases []func(bool) error
	var only func(bool) error
	for _, v := range c {
		if h, ok := v.(Holder); ok {
			r := h.Hold(s)
			if only == nil && releases == nil {
				only = r // the usual chain, lengths and the rule engine: no slice per scan
				continue
			}
			if only != nil {
				releases, only = append(releases, only), nil
			}
			releases = append(releases, r)
		}
	}
	if only != nil {
		return only
	}
	return func(stored bool) error {
		var errs []error
		for _, r := range releases {
			errs = append(errs, r(stored))
		}
		return errors.Join(errs...)
	}
}

// Holder is a Validator that judges a scan by the scans before it (the
// duplicate rules). Hold is called once s is judged, before it is stored:
// from then on s counts for the scans judged after it, which may be
// judged while s is still being stored. release(stored) is called once
// the store answered: a scan that could not be stored is forgotten, since
// it is rescanned and must not count as seen.
type Holder interface {
	Hold(s *Scan) (release func(stored bool) error)
}

// Documents is workflow.Rules: the document patterns of the chain's
// rule engines.
func (c Chain) Documents() []workflow.Pattern {
	var out []workflow.Pattern
	for _, v := range c {
		if r, ok := v.(workflow.Rules); ok {
			out = append(out, r.Documents()...)
		}
	}
	return out
}

// Order is workflow.Rules: the first of the chain's rule engines that
// knows the order.
func (c Chain) Order(name string) (workflow.Order, bool) {
	for _, v := range c {
		if r, ok := v.(workflow.Rules); ok {
			if o, ok := r.Order(name); ok {
				return o, true
			}
		}
	}
	return workflow.Order{}, false
}

// Children is workflow.Rules: the first of the chain's rule engines that
// requires something of the parent product's children.
func (c Chain) Children(parentProduct string) (workflow.Children, bool) {
	for _, v := range c {
		if r, ok := v.(workflow.Rules); ok {
			if k, ok := r.Children(parentProduct); ok {
				return k, true
			}
		}
	}
	return workflow.Children{}, false
}
