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
		s.open(now, unit)
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
	max := s.cfg.MaxChildren
	if max <= 0 {
		max = DefaultMaxChildren
	}
	prod := product(r.Fields)
	stale := linked && l.Open && l.Station == s.cfg.Station // this station's, not in its open aggregation
	switch {
	case len(o.Children) >= max:
		s.find(Reject, "aggregation.full", fmt.Sprintf("%s has %d children, the most allowed", o.Parent, max))
	case len(s.cfg.ChildProducts) > 0 && !slices.Contains(s.cfg.ChildProducts, prod):
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
		if s.cfg.ChildCount > 0 && len(o.Children) >= s.cfg.ChildCount {
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

func (s *step) open(now time.Time, parent string) {
	s.st.Open = &Aggregation{Mode: s.st.Mode, Parent: parent, Children: []string{}, Opened: now, Operator: s.st.Context[wire.DocOperator]}
}

// close ends the open aggregation: an add (pack, build) or delete
// (unpack) event of the children whose links are as it left them.
func (s *step) close(by string) {
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
