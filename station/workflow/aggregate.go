package workflow

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/scangw/scangw/station/wire"
)

// maxDepth bounds the walk up a parent's own parents for cycles: packs
// nest a few levels (item, case, pallet), never this deep.
const maxDepth = 32

// aggregate takes a unit read in an aggregation mode. It reports true
// when the read is done with: a parent, or refused, or a repeat; false
// when it became a child (and counts for the order in context).
func (s *step) aggregate(now time.Time, r *Read) bool {
	unit, o := r.Unit, s.st.Open
	switch {
	case unit == "":
		s.find(Reject, "aggregation.no_unit", "a pack, build or unpack takes serialized units: this read names none")
		return true
	case o == nil:
		s.open(now, unit, r.Fields)
		return true
	case unit == o.Parent:
		s.close(wire.ClosedByParent)
		return true
	case slices.Contains(o.Children, unit):
		s.find(Warn, "aggregation.repeat", fmt.Sprintf("%s is in this %s already", unit, o.Mode))
		return true
	}
	l, linked := s.link(unit)
	if o.Mode == ModeUnpack {
		if !linked || l.Open || l.Parent != o.Parent {
			s.find(Reject, "aggregation.not_in_parent", fmt.Sprintf("%s is not packed in %s", unit, o.Parent))
			return true
		}
		o.Children = append(o.Children, unit)
		return false
	}
	max := s.maxChildren()
	prod := product(r.Fields)
	stale := linked && l.Open && l.Station == s.cfg.Station // this station's, not in its open aggregation
	switch {
	case len(o.Children) >= max:
		s.find(Reject, "aggregation.full", fmt.Sprintf("%s has %d children, the most allowed", o.Parent, max))
	case !allows(s.cfg.ChildProducts, prod) || !allows(o.Require.Products, prod):
		s.find(Reject, "aggregation.child_product", fmt.Sprintf("%s is not a product this station packs", name(prod)))
	case linked && l.Open && !stale:
		s.find(Reject, "aggregation.in_open", fmt.Sprintf("%s is being packed into %s at station %s", unit, l.Parent, l.Station))
	case linked && !l.Open:
		s.find(Reject, "aggregation.packed", fmt.Sprintf("%s is packed in %s: unpack it first", unit, l.Parent))
	case s.inside(o.Parent, unit):
		s.find(Reject, "aggregation.cycle", fmt.Sprintf("%s is inside %s", o.Parent, unit))
	default:
		o.Children = append(o.Children, unit)
		s.setLink(unit, &Link{Parent: o.Parent, Station: s.cfg.Station, Open: true})
		count := o.Require.Count
		if count == 0 {
			count = s.cfg.ChildCount
		}
		if count > 0 && len(o.Children) >= count {
			s.close(wire.ClosedByCount)
		}
		return false
	}
	return true
}

// inside reports whether unit is parent or one of its parents.
func (s *step) inside(parent, unit string) bool {
	for range maxDepth {
		if parent == unit {
			return true
		}
		l, ok := s.link(parent)
		if !ok {
			return false
		}
		parent = l.Parent
	}
	return false
}

// allows reports whether a list of products admits prod: an empty one
// admits any.
func allows(products []string, prod string) bool {
	return len(products) == 0 || slices.Contains(products, prod)
}

func (s *step) maxChildren() int {
	if s.cfg.MaxChildren > 0 {
		return s.cfg.MaxChildren
	}
	return DefaultMaxChildren
}

// open opens an aggregation of parent, whose read carried fields. A
// pack or build takes what the rules require of the parent's product's
// children now, for the whole of it.
func (s *step) open(now time.Time, parent string, fields map[string]string) {
	a := &Aggregation{Mode: s.st.Mode, Parent: parent, Children: []string{}, Opened: now, Operator: s.st.Context[wire.DocOperator]}
	if prod := product(fields); prod != "" && a.Mode != ModeUnpack && s.rules != nil {
		a.Require, _ = s.rules.Children(prod)
		if max := s.maxChildren(); a.Require.Count > max {
			// It could never close: refused now rather than stuck later.
			s.find(Reject, "aggregation.count", fmt.Sprintf("%s requires %d children, more than the %d this station allows", prod, a.Require.Count, max))
			return
		}
	}
	s.st.Open = a
}

// short says why the open aggregation cannot close yet: "" when it can.
func (s *step) short() string {
	o := s.st.Open
	if n := o.Require.Count; len(o.Children) < n {
		return fmt.Sprintf("%d children required, %d scanned", n, len(o.Children))
	}
	return ""
}

// close ends the open aggregation: an add (pack, build) or delete
// (unpack) event of the children whose links are as it left them. One
// short of its required count stays open, refused.
func (s *step) close(by string) {
	if m := s.short(); m != "" {
		s.find(Reject, "aggregation.count", m)
		return
	}
	o := s.st.Open
	s.st.Open = nil
	action := wire.AggAdd
	if o.Mode == ModeUnpack {
		action = wire.AggDelete
	}
	var kids []string
	for _, c := range o.Children {
		l, ok := s.link(c)
		switch {
		case action == wire.AggAdd && ok && l == (Link{Parent: o.Parent, Station: s.cfg.Station, Open: true}):
			s.setLink(c, &Link{Parent: o.Parent, Station: s.cfg.Station})
		case action == wire.AggDelete && ok && !l.Open && l.Parent == o.Parent:
			s.setLink(c, nil)
		default:
			continue // another station unpacked it meanwhile
		}
		kids = append(kids, c)
	}
	if len(kids) == 0 {
		s.find(Warn, "aggregation.empty", fmt.Sprintf("%s of %s closed with no children: nothing recorded", o.Mode, o.Parent))
		return
	}
	s.out.Aggregations = append(s.out.Aggregations, wire.AggregationData{
		Mode: o.Mode, Action: action, Parent: o.Parent, Children: kids, ClosedBy: by,
		Operator: o.Operator, Context: maps.Clone(s.st.Context),
	})
}

// cancel drops the open aggregation and frees the children it took.
func (s *step) cancel() {
	o := s.st.Open
	s.st.Open = nil
	if o.Mode == ModeUnpack {
		return // nothing was marked
	}
	for _, c := range o.Children {
		if l, ok := s.link(c); ok && l == (Link{Parent: o.Parent, Station: s.cfg.Station, Open: true}) {
			s.setLink(c, nil)
		}
	}
}
