package station

import (
	"time"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station/epcis"
	"github.com/scangw/scangw/station/wire"
)

// The EPCIS rendering of a fact is stored in the same transaction as the
// fact's event, right behind it, so it goes out in the same order and with
// the same durability. Rendering is tried before the fact is submitted: a
// fact that has no EPCIS form (a rejected scan, a unit without a GS1 key)
// or that fails to render gets no EPCIS document, and never costs the
// scan its commit.

// epcisScan is the EPCIS record of a scan, which the scan's record
// precedes in the same Write.
func (s *Station) epcisScan(scan *Scan) (buffer.Record, bool) {
	c := s.settings.Load().cfg.EPCIS
	if c == nil {
		return buffer.Record{}, false
	}
	render := func(seq uint64) ([]byte, error) {
		d := scanData(scan, seq, s.store.Epoch())
		return epcis.ObjectEvent(*c, scan.ID, scan.Time, &d)
	}
	return s.epcisRecord(render, "scan", scan.ID)
}

// epcisAggregation is the EPCIS record of an aggregation event, which
// precedes it in the same Write.
func (s *Station) epcisAggregation(id string, t time.Time, a *wire.AggregationData) (buffer.Record, bool) {
	c := s.settings.Load().cfg.EPCIS
	if c == nil {
		return buffer.Record{}, false
	}
	render := func(seq uint64) ([]byte, error) {
		d := *a
		d.Seq, d.Epoch = seq, s.store.Epoch()
		return epcis.AggregationEvent(*c, id, t, &d)
	}
	return s.epcisRecord(render, "aggregation", id)
}

// epcisRecord tries render once and makes the record if it gives a
// document: a companion of its fact's record (buffer.Record.Companion),
// so it takes no seq and renders with its fact's.
func (s *Station) epcisRecord(render func(seq uint64) ([]byte, error), what, id string) (buffer.Record, bool) {
	b, err := render(1)
	if err != nil {
		s.log.Warn("no EPCIS event for this "+what, "id", id, "err", err)
		s.m.epcisSkipped.WithLabelValues(s.cfg.ID, "error").Inc()
		return buffer.Record{}, false
	}
	if b == nil {
		return buffer.Record{}, false
	}
	return buffer.Record{Stream: wire.EPCISStream(s.cfg.ID), Build: render, Companion: true}, true
}
