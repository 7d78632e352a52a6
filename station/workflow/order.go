package workflow

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/scangw/scangw/station/wire"
)

// orderKey is the context key that names the order in progress.
func orderKey(ctx map[string]string) string {
	for _, k := range []string{wire.DocOrder, wire.DocPick} {
		if ctx[k] != "" {
			return k
		}
	}
	return ""
}

// syncOrder makes State.Order the progress of the order in context:
// kept when it is the same, else loaded from the index (or new), nil
// when no order is in context or the rule sets do not know it. It
// returns the order as the rules have it.
func (s *step) syncOrder() Order {
	name := s.st.Context[orderKey(s.st.Context)]
	var o Order
	ok := name != "" && s.rules != nil
	if ok {
		o, ok = s.rules.Order(name)
	}
	if !ok {
		s.st.Order = nil
		return Order{}
	}
	p := s.st.Order
	if p == nil || p.Name != name {
		p = &Progress{Name: name}
		if v, ok := s.get(OrderKey(s.cfg.Station, name)); ok && json.Unmarshal([]byte(v), p) != nil {
			p = &Progress{Name: name} // unreadable: start over rather than fail the scan
		}
		p.Name = name
	}
	p.Lines = reconcile(p.Lines, o.Lines)
	s.st.Order = p
	return o
}

// reconcile returns the lines of the order as the rules have them now,
// each with the count its product had: a reload may change an order.
func reconcile(had []wire.OrderLine, want []Line) []wire.OrderLine {
	same := len(had) == len(want)
	for i := 0; same && i < len(want); i++ {
		same = had[i].Product == want[i].Product && had[i].Expected == want[i].Quantity
	}
	if same {
		return had
	}
	counts := map[string][]int{}
	for _, l := range had {
		counts[l.Product] = append(counts[l.Product], l.Counted)
	}
	lines := make([]wire.OrderLine, len(want))
	for i, l := range want {
		lines[i] = wire.OrderLine{Product: l.Product, Expected: l.Quantity}
		if c := counts[l.Product]; len(c) > 0 {
			lines[i].Counted, counts[l.Product] = c[0], c[1:]
		}
	}
	return lines
}

// count judges a product read against the order in context.
func (s *step) count(r *Read) {
	o, p := s.syncOrder(), s.st.Order
	if p == nil {
		return
	}
	prod, unit, mode := product(r.Fields), r.Unit, s.st.Mode
	counted, seen := "", false
	if unit != "" {
		counted = CountedKey(s.cfg.Station, p.Name, unit)
		_, seen = s.get(counted)
	}
	outcome, pol := wire.OrderCounted, Warn
	lines := lineIndexes(o, prod, r.Fields["serial"])
	if seen {
		outcome = wire.OrderRepeat
		s.find(Warn, "order.repeat", fmt.Sprintf("%s was counted for order %s already", unit, p.Name))
	} else {
		switch {
		case len(lines) == 0:
			outcome, pol = wire.OrderUnexpected, policyOf(s.cfg.Unexpected, mode)
			p.Unexpected++
			s.find(pol, "order.unexpected", fmt.Sprintf("order %s has no line of %s", p.Name, name(prod)))
		case o.Listed != nil && slices.ContainsFunc(lines, func(i int) bool { return o.Lines[i].Serials && o.Lines[i].Product != "" }) && !o.Listed(prod, r.Fields["serial"]):
			outcome, pol = wire.OrderWrongSerial, policy(o.Policy)
			p.WrongSerial++
			s.find(pol, "order.wrong_serial", fmt.Sprintf("serial %q of %s is not on order %s", r.Fields["serial"], name(prod), p.Name))
		default:
			// A line of Quantity 0 takes any number: it is never over.
			i := slices.IndexFunc(lines, func(i int) bool { return p.Lines[i].Expected == 0 || p.Lines[i].Counted < p.Lines[i].Expected })
			if i >= 0 {
				p.Lines[lines[i]].Counted++
			} else {
				outcome, pol = wire.OrderOver, policyOf(s.cfg.OverScan, mode)
				p.Over++
				s.find(pol, "order.over", fmt.Sprintf("the line of %s on order %s is met", name(prod), p.Name))
			}
		}
		if counted != "" && pol != Reject {
			s.put(counted, &outcome)
		}
	}
	status := wire.OrderProgress
	if outcome == wire.OrderCounted && !p.Complete && met(p.Lines) {
		p.Complete, status = true, wire.OrderComplete
	}
	if outcome != wire.OrderRepeat {
		s.put(OrderKey(s.cfg.Station, p.Name), encode(p))
	}
	d := &wire.OrderData{
		Mode: mode, Order: p.Name, Status: status,
		Last:  wire.OrderScan{Scan: r.Scan, Unit: unit, Product: prod, Outcome: outcome},
		Lines: slices.Clone(p.Lines), Over: p.Over, Unexpected: p.Unexpected, WrongSerial: p.WrongSerial,
		Operator: s.st.Context[wire.DocOperator],
	}
	for _, l := range p.Lines {
		d.Counted += l.Counted
		d.Remaining += max(0, l.Expected-l.Counted)
	}
	s.out.Order = d
}

// lineIndexes are the order's lines a unit belongs to: those of its
// product, else a line of serials of any product (Product "") that lists
// its serial.
func lineIndexes(o Order, prod, serial string) []int {
	var out []int
	for i, l := range o.Lines {
		if prod != "" && l.Product == prod {
			out = append(out, i)
		}
	}
	if len(out) > 0 || serial == "" || o.Listed == nil {
		return out
	}
	for i, l := range o.Lines {
		if l.Product == "" && o.Listed("", serial) {
			out = append(out, i)
		}
	}
	return out
}

// met reports whether every line is met. A line of Quantity 0 (any
// number of its product) is met by any count, so an order of only such
// lines is never complete: nothing says when it is.
func met(lines []wire.OrderLine) bool {
	return slices.ContainsFunc(lines, func(l wire.OrderLine) bool { return l.Expected > 0 }) &&
		!slices.ContainsFunc(lines, func(l wire.OrderLine) bool { return l.Expected > 0 && l.Counted < l.Expected })
}

// policyOf is the policy of mode in m ("*": any other mode).
func policyOf(m map[string]string, mode string) string {
	p, ok := m[mode]
	if !ok {
		p = m["*"]
	}
	return policy(p)
}

// policy is p, or Warn for anything but Reject.
func policy(p string) string {
	if p == Reject {
		return Reject
	}
	return Warn
}

func name(prod string) string {
	if prod == "" {
		return "an unknown product"
	}
	return prod
}
