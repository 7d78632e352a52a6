package station

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/workflow"
)

// orderRules is one order of one product line, b.N units long.
type orderRules struct{ n int }

func (orderRules) Documents() []workflow.Pattern { return nil }
func (r orderRules) Order(name string) (workflow.Order, bool) {
	return workflow.Order{Name: name, Lines: []workflow.Line{{Product: "09506000134352", Quantity: r.n}}}, name == "PO-1"
}
func (orderRules) Children(string) (workflow.Children, bool) { return workflow.Children{}, false }

// fieldsRule gives a scan the fields and unit key the rule engine would.
type fieldsRule struct{ orderRules }

func (fieldsRule) Validate(s *Scan) {
	s.Verdict = Accepted
	s.Fields = map[string]string{"gtin": "09506000134352", "serial": string(s.Data)}
	s.Key = "gs1:(01)09506000134352(21)" + string(s.Data)
}

// BenchmarkScan is one scan through take and give on a real buffer: a
// plain one (inert: no workflow step), and one counted against an order
// in context (the step, and its own commit with the order event and the
// counted unit).
func BenchmarkScan(b *testing.B) {
	for _, withOrder := range []bool{false, true} {
		b.Run(fmt.Sprint("order=", withOrder), func(b *testing.B) {
			buf, err := buffer.Open(buffer.Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Close()
			v := fieldsRule{orderRules{n: b.N + 1}}
			st := New(Config{ID: "d1", Mode: "receive", Site: "s", Gateway: "g"}, Deps{Store: buf, State: buf, Validator: v,
				Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard(), ClockSynced: func() bool { return true },
				Index: NewIndex(buf.LoadState, 0, nil)})
			ctx := context.Background()
			if withOrder {
				if err := st.SetContext(ctx, map[string]string{"order": "PO-1"}); err != nil {
					b.Fatal(err)
				}
			}
			sc := newPlayback("h1")
			reads := make([]device.Read, b.N)
			for i := range reads {
				reads[i] = device.Read{Scanner: "h1", Data: fmt.Appendf(nil, "S%08d", i)}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for _, r := range reads {
				st.handle(ctx, sc, r)
			}
			b.StopTimer()
			if got := sc.signals(); len(got) != b.N || got[len(got)-1] != device.Good {
				b.Fatalf("%d answers, last %v", len(got), got[len(got)-1])
			}
			if withOrder && st.Status().Order.Counted != b.N {
				b.Fatalf("counted %d of %d", st.Status().Order.Counted, b.N)
			}
		})
	}
}
