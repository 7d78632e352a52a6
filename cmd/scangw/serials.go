package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/zpl"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/assign"
	"github.com/scangw/scangw/station/label"
	"github.com/scangw/scangw/station/serials"
	"github.com/scangw/scangw/station/wire"
)

// schemeTemplates parses the configured serial schemes. The config was
// validated, so an error here is a bug of validation; it is reported all
// the same, by key.
func schemeTemplates(cfg *configs.Config) (map[string]*serials.Template, error) {
	out := map[string]*serials.Template{}
	for i, s := range cfg.Serials {
		t, err := s.Parse()
		if err != nil {
			return nil, fmt.Errorf("serials[%d].template: %w", i, err)
		}
		out[s.Name] = t
	}
	return out, nil
}

// newAssigner makes the gateway's serial assigner and its printers; nil
// when no scheme is configured.
func newAssigner(cfg *configs.Config, buf *buffer.Buffer, log *slog.Logger, reg prometheus.Registerer) (*assign.Assigner, error) {
	if len(cfg.Serials) == 0 {
		return nil, nil
	}
	templates, err := schemeTemplates(cfg)
	if err != nil {
		return nil, err
	}
	var schemes []assign.Scheme
	for _, s := range cfg.Serials {
		schemes = append(schemes, assign.Scheme{Name: s.Name, Template: templates[s.Name], Start: s.Start, Granted: s.Granted, LowWater: s.LowWater})
	}
	printers := map[string]assign.Printer{}
	for i, p := range cfg.Printers {
		pr, err := zpl.New(zpl.Config{Addr: p.Addr, Device: p.Device}, log.With("printer", p.ID))
		if err != nil {
			return nil, fmt.Errorf("printers[%d]: %w", i, err)
		}
		printers[p.ID] = pr
	}
	retry := defaultRetry(cfg)
	return assign.New(assign.Options{
		Site: cfg.Gateway.Site, Gateway: cfg.Gateway.ID, Schemes: schemes, Printers: printers,
		Retry: retry, Store: buf, Log: log.With("part", "assign"), Registerer: reg,
	})
}

// defaultRetry is the printers' retry pause: the shortest configured.
func defaultRetry(cfg *configs.Config) (d time.Duration) {
	for _, p := range cfg.Printers {
		if d == 0 || p.Retry.D() < d {
			d = p.Retry.D()
		}
	}
	return d
}

// assignConfig is station sc's serial assignment, nil when it assigns
// none. The label file is read and parsed here: a reload reads it again.
func assignConfig(sc configs.Station, p int) (*station.AssignConfig, error) {
	a := sc.Assign
	if a.Scheme == "" {
		return nil, nil
	}
	c := &station.AssignConfig{Scheme: a.Scheme, Printer: a.Printer, Verify: a.Verify, VerifyTimeout: a.VerifyTimeout.D()}
	if a.Label != "" {
		b, err := os.ReadFile(a.Label)
		if err != nil {
			return nil, fmt.Errorf("stations[%d].assign.label: %w", p, err)
		}
		if c.Label, err = label.Parse(string(b)); err != nil {
			return nil, fmt.Errorf("stations[%d].assign.label: %s: %w", p, a.Label, err)
		}
	}
	return c, nil
}

// grantSerials is the command grant_serials.
func grantSerials(a *assign.Assigner) func(ctx context.Context, station string, args json.RawMessage) (any, error) {
	return func(ctx context.Context, _ string, args json.RawMessage) (any, error) {
		g, err := serials.ParseGrant(args)
		if err != nil {
			return nil, &wire.Error{Code: wire.CodeBadArgs, Message: err.Error()}
		}
		left, err := a.Grant(ctx, g)
		if err != nil {
			return nil, err
		}
		return map[string]any{"scheme": g.Scheme, "remaining": left}, nil
	}
}
