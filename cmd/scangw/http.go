package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink"
)

// serveHTTP serves /metrics, /healthz, /readyz and the status page (/ and
// /status) until ctx ends.
func serveHTTP(ctx context.Context, ln net.Listener, reg *prometheus.Registry, ready func() bool, page *statusPage) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", page.serveHTML)
	mux.HandleFunc("GET /status", page.serveJSON)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "stations starting\n", http.StatusServiceUnavailable)
			return
		}
		mq := "disconnected"
		if page.up.Connected() {
			mq = "connected"
		}
		fmt.Fprintf(w, "ready\nmqtt: %s\n", mq)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http: %w", err)
	}
	return nil
}

// statusPage is the gateway's state for a person at the dock with a
// laptop or phone: GET / is an HTML page that refreshes itself, GET
// /status the same as JSON. Prometheus has the history; this answers "is
// my scanner up, did that scan count, is the broker reachable" at a glance.
type statusPage struct {
	cfg      *configs.Config
	buf      *buffer.Buffer
	stations *station.Set
	up       *uplink.Uplink
	started  time.Time
}

type statusReport struct {
	Site        string    `json:"site"`
	Gateway     string    `json:"gateway"`
	Version     string    `json:"version"`
	Instance    string    `json:"instance"`
	ConfigHash  string    `json:"config_hash"`
	Started     time.Time `json:"started"`
	Uptime      float64   `json:"uptime_seconds"`
	ClockSynced bool      `json:"clock_synced"`
	MQTT        struct {
		Broker           string `json:"broker"`
		Connected        bool   `json:"connected"`
		PublishPermitted *bool  `json:"publish_permitted"` // null until known
		DuplicateGateway bool   `json:"duplicate_gateway"`
	} `json:"mqtt"`
	Buffer struct {
		Epoch     string  `json:"epoch"`
		Backlog   int64   `json:"backlog"`
		OldestAge float64 `json:"oldest_age_seconds"`
		NextSeq   uint64  `json:"next_seq"`
		DiskBytes int64   `json:"disk_bytes"`
	} `json:"buffer"`
	Stations []stationReport `json:"stations"`
}

type stationReport struct {
	ID       string               `json:"id"`
	Mode     string               `json:"mode"`
	Context  map[string]string    `json:"context,omitempty"`
	Running  bool                 `json:"running"`
	Scanners []wire.ScannerStatus `json:"scanners"`
	Recent   []station.Outcome    `json:"recent"` // newest first
}

func (p *statusPage) report() statusReport {
	h := p.up.Health() // what the heartbeat reports
	r := statusReport{
		Site: p.cfg.Gateway.Site, Gateway: p.cfg.Gateway.ID, Version: version(), Instance: p.up.Instance(),
		ConfigHash: p.cfg.Hash(), Started: p.started, Uptime: time.Since(p.started).Seconds(),
		ClockSynced: h.ClockSynced,
	}
	r.MQTT.Broker = redactURL(p.cfg.MQTT.Broker)
	r.MQTT.Connected = p.up.Connected()
	if permitted, known := p.up.PublishPermitted(); known {
		r.MQTT.PublishPermitted = &permitted
	}
	r.MQTT.DuplicateGateway = p.up.DuplicateGateway()
	r.Buffer.Epoch, r.Buffer.NextSeq, r.Buffer.DiskBytes = p.buf.Epoch(), p.buf.NextSeq(), p.buf.DiskBytes()
	r.Buffer.Backlog, r.Buffer.OldestAge = h.Backlog, h.OldestAge.Seconds()
	recent := map[string][]station.Outcome{}
	for _, st := range p.stations.Stations() {
		recent[st.ID()] = st.Recent()
	}
	for _, sh := range h.Stations {
		r.Stations = append(r.Stations, stationReport{ID: sh.ID, Mode: sh.Mode, Context: sh.Context,
			Running: sh.Running, Scanners: sh.Scanners, Recent: recent[sh.ID]})
	}
	return r
}

// redactURL hides a password a broker URL might carry.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

func (p *statusPage) serveJSON(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(p.report())
}

func (p *statusPage) serveHTML(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	statusHTML.Execute(w, p.report())
}

// statusHTML needs no script and no outside asset: the box may have no
// internet, and the page must load on anything.
var statusHTML = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
	"secs": func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>scangw {{.Site}}/{{.Gateway}}</title>
<style>
body{font:15px system-ui,sans-serif;margin:1em;color:#222}
table{border-collapse:collapse;margin:.4em 0 1.2em}td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.ok,.accepted{color:#176117}.bad,.rejected,.refused,.discarded{color:#a11}.warn,.warning{color:#8a5a00}
code{font-size:90%}
</style></head><body>
<h1>{{.Site}}/{{.Gateway}}</h1>
<table>
<tr><th>broker</th><td>{{.MQTT.Broker}} —
{{if .MQTT.Connected}}<span class="ok">connected</span>{{else}}<span class="bad">not connected</span> (scans wait safely in the buffer){{end}}
{{with .MQTT.PublishPermitted}}{{if not .}} · <span class="bad">the broker does not let this gateway publish (ACL)</span>{{end}}{{end}}
{{if .MQTT.DuplicateGateway}} · <span class="bad">another gateway uses this id</span>{{end}}</td></tr>
<tr><th>backlog</th><td>{{.Buffer.Backlog}} waiting{{if .Buffer.Backlog}}, oldest {{secs .Buffer.OldestAge}}{{end}} · next seq {{.Buffer.NextSeq}} · epoch <code>{{.Buffer.Epoch}}</code></td></tr>
<tr><th>clock</th><td>{{if .ClockSynced}}<span class="ok">synchronised</span>{{else}}<span class="warn">not synchronised</span> (expiry dates only warn){{end}}</td></tr>
<tr><th>running</th><td>{{.Version}} since {{.Started.Format "2006-01-02 15:04:05 MST"}} ({{secs .Uptime}}) · config <code>{{.ConfigHash}}</code></td></tr>
</table>
{{range .Stations}}
<h2>{{.ID}} <small>{{.Mode}}{{range $k, $v := .Context}} · {{$k}} {{$v}}{{end}}{{if not .Running}} · <span class="bad">not running</span>{{end}}</small></h2>
<p>{{range .Scanners}}<span class="{{if .Up}}ok{{else}}bad{{end}}">{{.ID}} {{if .Up}}up{{else}}down{{end}}</span> {{end}}</p>
<table><tr><th>when</th><th>scanner</th><th>data</th><th>verdict</th><th>seq</th></tr>
{{range .Recent}}<tr><td>{{ago .Time}} ago</td><td>{{.Scanner}}</td><td><code>{{.Data}}</code></td>
<td class="{{.Verdict}}">{{.Verdict}}{{range .Reasons}}<br><small>{{.Code}}: {{.Message}}</small>{{end}}</td><td>{{if .Seq}}{{.Seq}}{{end}}</td></tr>
{{else}}<tr><td colspan="5">no scans since the start</td></tr>{{end}}
</table>
{{end}}
</body></html>
`))
