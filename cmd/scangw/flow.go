package main

import (
	"cmp"
	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/station/epcis"
	"github.com/scangw/scangw/station/workflow"
)

// flowConfig is station sc's workflow as cfg configures it: its document
// patterns, then the gateway's, then the GS1 built-ins if asked for.
// The config was validated: every pattern compiles.
func flowConfig(cfg *configs.Config, sc configs.Station) workflow.Config {
	var docs []workflow.Pattern
	for _, d := range append(append([]configs.Document(nil), sc.Documents...), cfg.Documents...) {
		if p, err := workflow.NewPattern(d.Kind, d.Pattern, d.Key); err == nil {
			docs = append(docs, p)
		}
	}
	if sc.GS1Documents {
		docs = append(docs, workflow.BuiltinPatterns()...)
	}
	return workflow.Config{
		Documents:      docs,
		Idle:           sc.ContextIdle.D(),
		OverScan:       sc.Orders.OverScan,
		Unexpected:     sc.Orders.Unexpected,
		ChildCount:     sc.Aggregation.ChildCount,
		MaxChildren:    sc.Aggregation.MaxChildren,
		ChildProducts:  sc.Aggregation.ChildProducts,
		DocumentSignal: sc.DocumentSignal,
	}
}

// epcisConfig is station sc's EPCIS rendering, nil when off.
func epcisConfig(cfg *configs.Config, sc configs.Station) *epcis.Config {
	if !cfg.EPCIS.Enabled {
		return nil
	}
	c := &epcis.Config{
		ReadPoint:   cmp.Or(sc.EPCIS.ReadPoint, cfg.EPCIS.ReadPoint),
		BizLocation: cmp.Or(sc.EPCIS.BizLocation, cfg.EPCIS.BizLocation),
		EPCForm:     cfg.EPCIS.EPCForm,
	}
	if n := cfg.EPCIS.CompanyPrefixLength; n > 0 {
		c.CompanyPrefixLength = map[string]int{"": n}
	}
	return c
}
