package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink"
)

// httpServer serves /metrics, /healthz, /readyz and the status page (/,
// /status, the event stream /events and the page's assets). A token, when
// set, guards the status page always and the other three unless http.open
// lists them; Apply changes the token, the open list and the listen
// address of a running server.
type httpServer struct {
	log     *slog.Logger
	handler http.Handler
	// key signs session cookies. It is made anew by every process, so a
	// cookie is worth nothing outside the process that set it.
	key  []byte
	auth atomic.Pointer[httpAuth]

	mu      sync.Mutex
	listen  string        // http.listen as configured
	ln      net.Listener  // the listener to serve; nil while disabled
	serving net.Listener  // the one Run serves
	stopped bool          // Run has returned
	changed chan struct{} // wakes Run when ln changed
}

// httpAuth is one configuration's token state, swapped whole by Apply.
type httpAuth struct {
	// bearer is the token's MAC; nil when no token is set. Requests
	// compare MACs, which have one length, so the comparison time says
	// nothing about the token's length either.
	bearer []byte
	cookie string // the session cookie's value
	open   map[string]bool
}

const sessionCookie = "scangw_session"

// newHTTPServer reads the token and binds the listener, so that a missing
// token file or a port in use is a config error before anything runs; an
// empty c.Listen binds nothing until Apply gives one.
func newHTTPServer(c configs.HTTP, reg *prometheus.Registry, ready func() bool, page *statusPage, log *slog.Logger) (*httpServer, error) {
	s := &httpServer{log: log, key: make([]byte, 32), changed: make(chan struct{}, 1)}
	rand.Read(s.key) // never fails (crypto/rand)
	auth, err := s.loadAuth(c)
	if err != nil {
		return nil, err
	}
	s.auth.Store(auth)
	if c.Listen != "" {
		if s.ln, err = listenHTTP(c.Listen, ""); err != nil {
			return nil, err
		}
		log.Info("http listening", "addr", s.ln.Addr().String(), "token", auth.bearer != nil)
	}
	s.listen = c.Listen

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { s.serveIndex(w, r, page) })
	mux.Handle("GET /status", s.guardData(http.HandlerFunc(page.serveJSON)))
	mux.Handle("GET /events", s.guardData(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveEvents(w, r, page) })))
	mux.Handle("POST /serial/next", s.guardData(page.serveSerial(false)))
	mux.Handle("POST /serial/reprint", s.guardData(page.serveSerial(true)))
	mux.HandleFunc("GET /assets/{name}", serveAsset) // no data in them; the login form needs the CSS
	mux.Handle("/metrics", s.guard("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})))
	mux.Handle("/healthz", s.guard("/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})))
	mux.Handle("/readyz", s.guard("/readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready() {
			http.Error(w, "stations starting\n", http.StatusServiceUnavailable)
			return
		}
		mq := "disconnected"
		if page.up.Connected() {
			mq = "connected"
		}
		fmt.Fprintf(w, "ready\nmqtt: %s\n", mq)
	})))
	s.handler = securityHeaders(mux)
	return s, nil
}

// listenHTTP binds addr. old is the address being replaced, if any: moving
// between two hosts on one port cannot bind the new one first, so the
// error says what will.
func listenHTTP(addr, old string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if _, p, _ := net.SplitHostPort(addr); old != "" && errors.Is(err, syscall.EADDRINUSE) {
		if _, op, _ := net.SplitHostPort(old); op == p {
			return nil, fmt.Errorf("http.listen %s: %w (the running %s holds the port: restart to move it)", addr, err, old)
		}
	}
	return nil, fmt.Errorf("http.listen %s: %w", addr, err)
}

// httpToken is the status token of c: token, or what token_file holds
// (read at every call: a reload picks up a rotated file). The server
// checks requests against it and `scangw serial` sends it.
func httpToken(c configs.HTTP) (string, error) {
	if c.TokenFile == "" {
		return c.Token, nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("http.token_file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("http.token_file %s: empty", c.TokenFile)
	}
	// The same floor configs.Validate puts on http.token.
	if len(token) < 16 {
		return "", fmt.Errorf("http.token_file %s: the token must be at least 16 characters", c.TokenFile)
	}
	return token, nil
}

// loadAuth reads the token and derives what requests are checked against.
func (s *httpServer) loadAuth(c configs.HTTP) (*httpAuth, error) {
	token, err := httpToken(c)
	if err != nil {
		return nil, err
	}
	if token == "" && c.Guarded() {
		// Validate refuses this too; the server never relies on it alone.
		return nil, fmt.Errorf("http.token: required (or token_file) when http.listen %s is not a loopback address", c.Listen)
	}
	a := &httpAuth{open: map[string]bool{}}
	for _, p := range c.Open {
		a.open[p] = true
	}
	if token != "" {
		a.bearer = s.mac("bearer", token)
		a.cookie = hex.EncodeToString(s.mac("session", token))
	}
	return a, nil
}

// mac is HMAC-SHA256 under the process key, domain-separated so that a
// cookie value is not also a bearer MAC.
func (s *httpServer) mac(use, v string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(use))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return m.Sum(nil)
}

// authorized reports whether r carries the token (a bearer header) or a
// session cookie for it; everything is when no token is set.
func (s *httpServer) authorized(a *httpAuth, r *http.Request) bool {
	if a.bearer == nil {
		return true
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		if subtle.ConstantTimeCompare(s.mac("bearer", strings.TrimSpace(h[7:])), a.bearer) == 1 {
			return true
		}
	}
	for _, c := range r.CookiesNamed(sessionCookie) {
		if subtle.ConstantTimeCompare([]byte(c.Value), []byte(a.cookie)) == 1 {
			return true
		}
	}
	return false
}

// guard lets a request through to h when it is authorized or path is
// one http.open lists.
func (s *httpServer) guard(path string, h http.Handler) http.Handler {
	return s.guarded(path, false, h)
}

// guardData guards the status page's data (/status, /events), which is
// never open; a refusal is JSON.
func (s *httpServer) guardData(h http.Handler) http.Handler { return s.guarded("", true, h) }

func (s *httpServer) guarded(open string, asJSON bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := s.auth.Load()
		if (open != "" && a.open[open]) || s.authorized(a, r) {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="scangw"`)
		if asJSON {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"unauthorized: send Authorization: Bearer <http.token>"}`+"\n")
			return
		}
		http.Error(w, "unauthorized: send Authorization: Bearer <http.token>", http.StatusUnauthorized)
	})
}

// serveIndex is the status page, its login form, and the login itself:
// /?token=<token> sets the session cookie and redirects to /, so that the
// token leaves the address bar (and the history a phone shows the next
// person).
func (s *httpServer) serveIndex(w http.ResponseWriter, r *http.Request, page *statusPage) {
	a := s.auth.Load()
	if q := r.URL.Query(); q.Has("token") {
		if a.bearer != nil && subtle.ConstantTimeCompare(s.mac("bearer", strings.TrimSpace(q.Get("token"))), a.bearer) != 1 {
			s.log.Warn("status page login refused: wrong token", "remote", r.RemoteAddr)
			loginPage(w, "Wrong token.")
			return
		}
		if a.bearer != nil {
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: a.cookie, Path: "/",
				MaxAge: 30 * 24 * 3600, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if !s.authorized(a, r) {
		loginPage(w, "")
		return
	}
	page.serveHTML(w, r)
}

func loginPage(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("WWW-Authenticate", `Bearer realm="scangw"`)
	w.WriteHeader(http.StatusUnauthorized)
	statusHTML.ExecuteTemplate(w, "login", msg)
}

// securityHeaders keeps the page to its own script and style (a scan's
// text is outside input) and out of other sites' frames.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// Run serves until ctx ends, moving to a new listener when Apply bound one.
func (s *httpServer) Run(ctx context.Context) error {
	var cur *httpServe
	defer func() {
		s.mu.Lock()
		s.stopped = true
		if s.ln != nil && s.ln != s.serving {
			s.ln.Close()
		}
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		var old *httpServe
		if s.ln != s.serving {
			old, cur = cur, nil
			if s.ln != nil {
				cur = s.serve(s.ln)
			}
			s.serving = s.ln
		}
		s.mu.Unlock()
		if old != nil {
			old.stop() // after the new one serves: no gap
		}
		var errc <-chan error
		if cur != nil {
			errc = cur.errc
		}
		select {
		case err := <-errc:
			return fmt.Errorf("http: %w", err)
		case <-ctx.Done():
			if cur != nil {
				cur.stop()
			}
			return nil
		case <-s.changed:
		}
	}
}

// httpServe is one http.Server on one listener.
type httpServe struct {
	srv  *http.Server
	errc chan error
	// done ends the requests' contexts when the server stops, so that
	// event streams end with it and do not hold up Shutdown.
	done context.CancelFunc
}

func (s *httpServer) serve(ln net.Listener) *httpServe {
	base, done := context.WithCancel(context.Background())
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return base }}
	srv.RegisterOnShutdown(done)
	hs := &httpServe{srv: srv, errc: make(chan error, 1), done: done}
	go func() { hs.errc <- srv.Serve(ln) }() // ends in stop, or Run returns its error
	return hs
}

func (hs *httpServe) stop() {
	defer hs.done()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if hs.srv.Shutdown(ctx) != nil {
		hs.srv.Close()
	}
	<-hs.errc
}

const (
	// eventTick is how often an event stream looks for a change: a read
	// is on the phone this long after it was judged, at most.
	eventTick = 100 * time.Millisecond
	// eventBeat is how often a stream sends even without a change, so
	// that ages move and the page sees the gateway is still there.
	eventBeat = time.Second
	// eventWriteTimeout ends the stream of a client that stopped reading
	// (a phone that went to sleep mid-stream).
	eventWriteTimeout = 10 * time.Second
)

// serveEvents streams the status report as Server-Sent Events: at once,
// then within eventTick of a change a person at the dock waits for, and
// every eventBeat besides. A changed token that no longer admits the
// request ends the stream; the page then finds the login form.
func (s *httpServer) serveEvents(w http.ResponseWriter, r *http.Request, page *statusPage) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // a proxy in front must not hold events back
	a := s.auth.Load()
	tick := time.NewTicker(eventTick)
	defer tick.Stop()
	var last string
	var sent time.Time
	for first := true; ; first = false {
		if cur := s.auth.Load(); cur != a {
			if !s.authorized(cur, r) {
				return
			}
			a = cur
		}
		if m := page.mark(); first || m != last || time.Since(sent) >= eventBeat {
			b, err := json.Marshal(page.report())
			if err != nil {
				return
			}
			rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
			retry := ""
			if first {
				retry = "retry: 1000\n" // the browser reconnects after a second
			}
			if _, err := fmt.Fprintf(w, "%sdata: %s\n\n", retry, b); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			last, sent = m, time.Now()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// Apply makes c the server's configuration: a new token or open list
// counts from the next request (a changed token voids the session cookies
// of the old one); a new listen address is bound before the old one is
// let go. On error nothing changes.
func (s *httpServer) Apply(c configs.HTTP) error {
	auth, err := s.loadAuth(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Listen != s.listen {
		if s.stopped {
			return errors.New("http: server stopped")
		}
		var ln net.Listener
		if c.Listen != "" {
			if ln, err = listenHTTP(c.Listen, s.listen); err != nil {
				return err
			}
		}
		if s.ln != nil && s.ln != s.serving { // bound by an Apply Run has not seen
			s.ln.Close()
		}
		s.ln, s.listen = ln, c.Listen
		select {
		case s.changed <- struct{}{}:
		default:
		}
		if ln != nil {
			s.log.Info("http listening", "addr", ln.Addr().String(), "token", auth.bearer != nil)
		} else {
			s.log.Info("http disabled")
		}
	}
	s.auth.Store(auth)
	return nil
}

// Addr is the address the server listens on ("" while disabled).
func (s *httpServer) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// statusPage is the gateway's state for a person at the dock with a
// phone: GET / is a page that updates itself, GET /status the same as
// JSON, GET /events that JSON as it changes. Prometheus has the history; this answers "is my scanner up, did
// that scan count, is the broker reachable" at a glance.
type statusPage struct {
	cfg      func() (*configs.Config, string) // the running config and its hash: a reload swaps them
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
	Stations []stationReport      `json:"stations"`
	Serials  []wire.SerialStatus  `json:"serials,omitempty"`
	Printers []wire.PrinterStatus `json:"printers,omitempty"`
}

type stationReport struct {
	ID       string               `json:"id"`
	Mode     string               `json:"mode"`
	Context  map[string]string    `json:"context,omitempty"`
	Running  bool                 `json:"running"`
	Scanners []wire.ScannerStatus `json:"scanners"`
	// The workflow: the order's progress, the open aggregation, the
	// serial awaiting its verify scan.
	Order       *wire.OrderState      `json:"order,omitempty"`
	Aggregation *wire.OpenAggregation `json:"aggregation,omitempty"`
	Verify      string                `json:"verify,omitempty"`
	Recent      []outcomeReport       `json:"recent"` // newest first
}

// outcomeReport is a read with its age by the gateway's clock, so a page
// on a phone whose clock is off still says how long ago it was.
type outcomeReport struct {
	station.Outcome
	AgeSeconds float64 `json:"age_seconds"`
}

func (p *statusPage) report() statusReport {
	cfg, hash := p.cfg()
	now := time.Now()
	h := p.up.Health() // what the heartbeat reports
	r := statusReport{
		Site: cfg.Gateway.Site, Gateway: cfg.Gateway.ID, Version: version(), Instance: p.up.Instance(),
		ConfigHash: hash, Started: p.started, Uptime: now.Sub(p.started).Seconds(),
		ClockSynced: h.ClockSynced,
	}
	r.MQTT.Broker = redactURL(p.up.Broker()) // the one in use, of mqtt.brokers
	r.MQTT.Connected = p.up.Connected()
	if permitted, known := p.up.PublishPermitted(); known {
		r.MQTT.PublishPermitted = &permitted
	}
	r.MQTT.DuplicateGateway = p.up.DuplicateGateway()
	r.Buffer.Epoch, r.Buffer.NextSeq, r.Buffer.DiskBytes = p.buf.Epoch(), p.buf.NextSeq(), p.buf.DiskBytes()
	r.Buffer.Backlog, r.Buffer.OldestAge = h.Backlog, h.OldestAge.Seconds()
	recent := map[string][]outcomeReport{}
	for _, st := range p.stations.Stations() {
		var rs []outcomeReport
		for _, o := range st.Recent() {
			rs = append(rs, outcomeReport{Outcome: o, AgeSeconds: max(now.Sub(o.Time).Seconds(), 0)})
		}
		recent[st.ID()] = rs
	}
	for _, sh := range h.Stations {
		r.Stations = append(r.Stations, stationReport{ID: sh.ID, Mode: sh.Mode, Context: sh.Context,
			Running: sh.Running, Scanners: sh.Scanners, Order: sh.Order, Aggregation: sh.Aggregation, Verify: sh.Verify,
			Recent: recent[sh.ID]})
	}
	r.Serials, r.Printers = h.Serials, h.Printers
	return r
}

// mark is cheap enough to take every eventTick and changes with what the
// page shows but for ages: reads, scanners, the broker link, the backlog.
func (p *statusPage) mark() string {
	var b strings.Builder
	_, hash := p.cfg()
	fmt.Fprint(&b, p.up.Connected(), p.up.DuplicateGateway(), p.buf.Depth(), p.buf.NextSeq(), hash)
	if permitted, known := p.up.PublishPermitted(); known {
		fmt.Fprint(&b, " permitted ", permitted)
	}
	for _, st := range p.stations.Stations() {
		ss := st.Status()
		fmt.Fprint(&b, "|", ss.ID, ss.Mode, ss.Running, ss.Context, ss.Verify)
		if o := ss.Order; o != nil {
			fmt.Fprint(&b, " ", o.Counted, o.Over, o.Unexpected, o.WrongSerial)
		}
		if a := ss.Aggregation; a != nil {
			fmt.Fprint(&b, " ", a.Parent, a.Children)
		}
		for _, sc := range ss.Scanners {
			fmt.Fprint(&b, " ", sc.ID, sc.Up)
		}
		if rs := st.Recent(); len(rs) > 0 {
			fmt.Fprint(&b, " ", rs[0].Time.UnixNano(), rs[0].Scanner, rs[0].Verdict, rs[0].Seq)
		}
	}
	return b.String()
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
	statusHTML.ExecuteTemplate(w, "status", p.report())
}

// statusFiles are the page's template, script and style: served from the
// binary, since a dock's box may have no internet and nothing to build.
//
//go:embed page
var statusFiles embed.FS

// assetVersion names the assets' content in their URLs, so a browser
// never keeps an old script beside a new page.
var assetVersion = func() string {
	h := sha256.New()
	for _, n := range []string{"status.js", "status.css"} {
		b, _ := statusFiles.ReadFile("page/" + n)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

var statusHTML = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"assetVersion": func() string { return assetVersion },
	"dur":          func(s float64) string { return shortDuration(time.Duration(s * float64(time.Second))) },
	"pct":          func(r float64) string { return fmt.Sprintf("%.0f%%", r*100) },
	// denied is publish_permitted known to be false (a nil pointer is
	// "not known yet", and a template calls any non-nil pointer true).
	"denied": func(b *bool) bool { return b != nil && !*b },
	"latest": func(rs []outcomeReport) *outcomeReport {
		if len(rs) == 0 {
			return nil
		}
		return &rs[0]
	},
}).ParseFS(statusFiles, "page/status.html"))

// shortDuration renders d for a glance, as status.js does: 7s, 3m05s, 2h04m.
func shortDuration(d time.Duration) string {
	s := int64(max(d, 0).Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
}

func serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	types := map[string]string{"status.js": "text/javascript; charset=utf-8", "status.css": "text/css; charset=utf-8"}
	ct, ok := types[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, _ := statusFiles.ReadFile(path.Join("page", name))
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(b)
}
