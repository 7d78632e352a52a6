package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/hotplug"
	"github.com/scangw/scangw/uplink"
)

const (
	testTokenA = "token-a-0123456789abcdef"
	testTokenB = "token-b-fedcba9876543210"
)

// startHTTPServer runs the daemon's HTTP server on c with the real status
// page of a gateway whose parts are built but not run (no broker, a
// scanner on an absent port), until the test ends.
func startHTTPServer(t *testing.T, c configs.HTTP) *httpServer {
	t.Helper()
	cfg, err := configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: gw-http, site: plant-h}
buffer:  {dir: %q}
mqtt:    {broker: "tcp://127.0.0.1:1"}
stations:
  - id: dock-1
    scanners: [{id: h1, port: /dev/scangw-test-absent}]
`, t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	buf, err := openBuffer(context.Background(), cfg.Buffer, log, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { buf.Close() })
	engine, err := newRuleEngine(cfg, buf)
	if err != nil {
		t.Fatal(err)
	}
	notices := uplink.NewNotices()
	parts, err := newStationParts(buf, engine, notices, hotplug.New(log), reg, log)
	if err != nil {
		t.Fatal(err)
	}
	stations, err := parts.build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	upCfg := uplinkConfig(cfg.MQTT, cfg.Gateway)
	upCfg.State, upCfg.Backlog, upCfg.Resender = buf, buf, buf
	upCfg.Stations, upCfg.Notices = stations, notices
	upCfg.ClockSynced = func() bool { return true }
	up := uplink.New(upCfg, uplinkQueue{buf}, log, reg)
	hash := cfg.Hash()
	page := &statusPage{cfg: func() (*configs.Config, string) { return cfg, hash }, buf: buf, stations: stations, up: up, started: time.Now()}

	hs, err := newHTTPServer(c, reg, stations.Ready, page, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hs.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return hs
}

// flipLast changes the last hex digit of v.
func flipLast(v string) string {
	if strings.HasSuffix(v, "0") {
		return v[:len(v)-1] + "1"
	}
	return v[:len(v)-1] + "0"
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type httpReq struct {
	path   string
	bearer string
	cookie *http.Cookie
}

func (rq httpReq) do(t *testing.T, addr string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+addr+rq.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rq.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+rq.bearer)
	}
	if rq.cookie != nil {
		req.AddCookie(rq.cookie)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rq.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// status is the response's code, failing the test on a transport error.
func (rq httpReq) status(t *testing.T, addr string) int {
	t.Helper()
	resp, _ := rq.do(t, addr)
	return resp.StatusCode
}

// login logs in with /?token= and returns the session cookie it set.
func login(t *testing.T, addr, token string) *http.Cookie {
	t.Helper()
	resp, body := httpReq{path: "/?token=" + token}.do(t, addr)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("/?token= answered %d, Location %q, want 303 to / (dropping the token)\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("/?token= set no %s cookie: %v", sessionCookie, resp.Header["Set-Cookie"])
	return nil
}

func TestHTTPTokenGuardsTheStatusPage(t *testing.T) {
	hs := startHTTPServer(t, configs.HTTP{Listen: "127.0.0.1:0", Token: testTokenA, Open: []string{"/metrics", "/healthz", "/readyz"}})
	addr := hs.Addr()

	cookie := login(t, addr, testTokenA)
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", cookie)
	}
	if strings.Contains(cookie.Value, testTokenA) || cookie.Value == "" {
		t.Errorf("session cookie value %q holds the token", cookie.Value)
	}
	forged := []*http.Cookie{
		{Name: sessionCookie, Value: testTokenA}, // the raw token is not a session
		{Name: sessionCookie, Value: strings.Repeat("0", len(cookie.Value))},
		{Name: sessionCookie, Value: flipLast(cookie.Value)},
		{Name: sessionCookie, Value: cookie.Value[:32]},
		{Name: "other", Value: cookie.Value},
	}

	cases := []struct {
		name string
		req  httpReq
		want int
	}{
		{"page without token", httpReq{path: "/"}, 401},
		{"status without token", httpReq{path: "/status"}, 401},
		{"page by bearer", httpReq{path: "/", bearer: testTokenA}, 200},
		{"status by bearer", httpReq{path: "/status", bearer: testTokenA}, 200},
		{"status by wrong bearer", httpReq{path: "/status", bearer: testTokenB}, 401},
		{"status by a prefix of the token", httpReq{path: "/status", bearer: testTokenA[:16]}, 401},
		{"page by cookie", httpReq{path: "/", cookie: cookie}, 200},
		{"status by cookie", httpReq{path: "/status", cookie: cookie}, 200},
		{"login with wrong token", httpReq{path: "/?token=" + testTokenB}, 401},
		{"assets need no token", httpReq{path: "/assets/status.css"}, 200},
		{"open metrics", httpReq{path: "/metrics"}, 200},
		{"open healthz", httpReq{path: "/healthz"}, 200},
	}
	for i, c := range forged {
		cases = append(cases, struct {
			name string
			req  httpReq
			want int
		}{fmt.Sprintf("forged cookie %d", i), httpReq{path: "/status", cookie: c}, 401})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tc.req.do(t, addr)
			if resp.StatusCode != tc.want {
				t.Fatalf("GET %s = %d, want %d\n%s", tc.req.path, resp.StatusCode, tc.want, body)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("Content-Security-Policy %q, want default-src 'self'", csp)
			}
			if resp.StatusCode != 401 {
				return
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("a refused request set cookies %v", resp.Cookies())
			}
			switch tc.req.path {
			case "/status":
				var e struct{ Error string }
				if json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
					t.Errorf("/status 401 body %q, want a JSON error", body)
				}
			default: // a browser gets the login form: a token field sent by GET to /
				for _, want := range []string{`<form method="get" action="/">`, `name="token"`} {
					if !strings.Contains(body, want) {
						t.Errorf("login page lacks %s:\n%s", want, body)
					}
				}
			}
		})
	}

	var st statusReport
	_, body := httpReq{path: "/status", cookie: cookie}.do(t, addr)
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Gateway != "gw-http" || len(st.Stations) != 1 {
		t.Errorf("/status = %+v (%v), want gw-http with one station", st, err)
	}
	_, page := httpReq{path: "/", cookie: cookie}.do(t, addr)
	for _, want := range []string{`name="viewport"`, "plant-h/gw-http", `data-station="dock-1"`, "h1 down", "no scans since the start", "/assets/status.js?v=" + assetVersion, `<noscript><meta http-equiv="refresh"`} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
}

// openEvents opens the event stream with the bearer token and returns it
// after its first event, decoded.
func openEvents(t *testing.T, addr, token string) (*bufio.Reader, io.Closer, statusReport) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	// The deadline of every read below: a stream that should end and does
	// not fails the test instead of hanging it.
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("/events = %d %s, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	st, err := nextEvent(r)
	if err != nil {
		resp.Body.Close()
		t.Fatalf("first event: %v", err)
	}
	return r, resp.Body, st
}

// nextEvent reads one event's data as a status report.
func nextEvent(r *bufio.Reader) (statusReport, error) {
	var st statusReport
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return st, err
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			return st, json.Unmarshal([]byte(data), &st)
		}
	}
}

// drainEvents reads the stream until it ends, and fails the test if it
// does not end by the client's deadline.
func drainEvents(t *testing.T, r *bufio.Reader, why string) {
	t.Helper()
	for {
		if _, err := nextEvent(r); err != nil {
			if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("event stream after %s: %v, want it ended", why, err)
			}
			return
		}
	}
}

// TestHTTPEvents: the event stream needs the token like /status, sends
// the report at once and again on a change, and ends when the token that
// admitted it goes.
func TestHTTPEvents(t *testing.T) {
	c := configs.HTTP{Listen: "127.0.0.1:0", Token: testTokenA}
	hs := startHTTPServer(t, c)
	addr := hs.Addr()
	if got := (httpReq{path: "/events"}).status(t, addr); got != 401 {
		t.Fatalf("/events without token = %d, want 401", got)
	}
	if got := (httpReq{path: "/events", bearer: testTokenB}).status(t, addr); got != 401 {
		t.Fatalf("/events with a wrong token = %d, want 401", got)
	}
	r, body, st := openEvents(t, addr, testTokenA)
	defer body.Close()
	if st.Gateway != "gw-http" || len(st.Stations) != 1 || st.Stations[0].ID != "dock-1" {
		t.Fatalf("first event %+v, want gw-http with dock-1", st)
	}
	// Nothing changes here, so the next events are the beat: the page
	// learns the gateway is still there.
	if _, err := nextEvent(r); err != nil {
		t.Fatalf("second event: %v", err)
	}

	// Still admitted by the open list changing; ended by the token.
	c.Open = []string{}
	if err := hs.Apply(c); err != nil {
		t.Fatal(err)
	}
	if _, err := nextEvent(r); err != nil {
		t.Fatalf("event after an Apply that kept the token: %v", err)
	}
	c.Token = testTokenB
	if err := hs.Apply(c); err != nil {
		t.Fatal(err)
	}
	drainEvents(t, r, "a token change")
}

// TestHTTPOpenPaths: http.open decides which of /metrics, /healthz and
// /readyz answer without the token; the status page never does.
func TestHTTPOpenPaths(t *testing.T) {
	for _, tc := range []struct {
		name string
		open []string
	}{
		{"all open", []string{"/metrics", "/healthz", "/readyz"}},
		{"none open", []string{}},
		{"healthz only", []string{"/healthz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startHTTPServer(t, configs.HTTP{Listen: "127.0.0.1:0", Token: testTokenA, Open: tc.open}).Addr()
			for _, p := range []string{"/metrics", "/healthz", "/readyz", "/", "/status"} {
				open := false
				for _, o := range tc.open {
					open = open || o == p
				}
				// /readyz says 503 here: the stations do not run.
				if got := (httpReq{path: p}).status(t, addr); (got != 401) != open {
					t.Errorf("GET %s without token = %d; open: %v", p, got, open)
				}
				if got := (httpReq{path: p, bearer: testTokenA}).status(t, addr); got == 401 {
					t.Errorf("GET %s with the token = 401", p)
				}
			}
		})
	}
}

func TestHTTPWithoutTokenIsOpen(t *testing.T) {
	addr := startHTTPServer(t, configs.HTTP{Listen: "127.0.0.1:0"}).Addr()
	for _, p := range []string{"/", "/status", "/metrics"} {
		if got := (httpReq{path: p}).status(t, addr); got != 200 {
			t.Errorf("GET %s = %d, want 200 (loopback, no token)", p, got)
		}
	}
	// A login link works as well, and sets nothing.
	resp, _ := httpReq{path: "/?token=whatever"}.do(t, addr)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 0 {
		t.Errorf("/?token= without a token set = %d with cookies %v, want 303 and none", resp.StatusCode, resp.Cookies())
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// answers reports whether addr serves /healthz (open by default).
func answers(addr string) bool {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func TestHTTPApply(t *testing.T) {
	c := configs.HTTP{Listen: "127.0.0.1:0", Token: testTokenA, Open: []string{"/healthz"}}
	hs := startHTTPServer(t, c)
	addr := hs.Addr()
	cookieA := login(t, addr, testTokenA)

	// A new token counts from the next request, and voids the old sessions.
	c.Token = testTokenB
	if err := hs.Apply(c); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  httpReq
		want int
	}{
		{httpReq{path: "/status", bearer: testTokenA}, 401},
		{httpReq{path: "/status", cookie: cookieA}, 401},
		{httpReq{path: "/status", bearer: testTokenB}, 200},
		{httpReq{path: "/metrics"}, 401},
		{httpReq{path: "/healthz"}, 200},
	} {
		if got := tc.req.status(t, addr); got != tc.want {
			t.Errorf("after the token change: %+v = %d, want %d", tc.req, got, tc.want)
		}
	}
	cookieB := login(t, addr, testTokenB)

	// The open list too.
	c.Open = []string{"/metrics"}
	if err := hs.Apply(c); err != nil {
		t.Fatal(err)
	}
	if got := (httpReq{path: "/metrics"}).status(t, addr); got != 200 {
		t.Errorf("/metrics after opening it = %d", got)
	}
	if got := (httpReq{path: "/healthz"}).status(t, addr); got != 401 {
		t.Errorf("/healthz after closing it = %d", got)
	}
	c.Open = []string{"/healthz"}

	// A listen address in use is refused whole: the old address, token
	// and sessions stay.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bad := c
	bad.Listen, bad.Token = busy.Addr().String(), testTokenA
	if err := hs.Apply(bad); err == nil || !strings.Contains(err.Error(), "http.listen") {
		t.Fatalf("Apply to a port in use = %v, want an http.listen error", err)
	}
	if hs.Addr() != addr {
		t.Fatalf("Addr %s after a refused Apply, want %s", hs.Addr(), addr)
	}
	if got := (httpReq{path: "/status", cookie: cookieB}).status(t, addr); got != 200 {
		t.Errorf("session after a refused Apply = %d, want 200", got)
	}

	// A new address: bound at once, served soon, and the old one let go,
	// with the event streams it served.
	events, body, _ := openEvents(t, addr, testTokenB)
	defer body.Close()
	c.Listen = freeAddr(t)
	if err := hs.Apply(c); err != nil {
		t.Fatal(err)
	}
	if hs.Addr() != c.Listen {
		t.Fatalf("Addr %s after Apply, want %s", hs.Addr(), c.Listen)
	}
	waitFor(t, "the new address to serve", func() bool { return answers(c.Listen) })
	waitFor(t, "the old address to close", func() bool { return !answers(addr) })
	drainEvents(t, events, "a move to a new address")
	if got := (httpReq{path: "/status", cookie: cookieB}).status(t, c.Listen); got != 200 {
		t.Errorf("session on the new address = %d, want 200 (same token, same process)", got)
	}

	// Two moves before Run notices either: the one in between is closed.
	mid, last := freeAddr(t), freeAddr(t)
	c.Listen = mid
	if err := hs.Apply(c); err != nil {
		t.Fatal(err)
	}
	c.Listen = last
	if err := hs.Apply(c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the last address to serve", func() bool { return answers(last) })
	waitFor(t, "the address in between to close", func() bool { return !answers(mid) })

	// Disabled, and back.
	old := c.Listen
	c.Listen = ""
	if err := hs.Apply(c); err != nil || hs.Addr() != "" {
		t.Fatalf("Apply disabled: %v, Addr %q", err, hs.Addr())
	}
	waitFor(t, "the disabled server to close", func() bool { return !answers(old) })
	c.Listen = freeAddr(t)
	if err := hs.Apply(c); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the re-enabled server to serve", func() bool { return answers(c.Listen) })
}

func TestHTTPTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  "+testTokenA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := configs.HTTP{Listen: "127.0.0.1:0", TokenFile: file}
	hs := startHTTPServer(t, c)
	addr := hs.Addr()
	if got := (httpReq{path: "/status", bearer: testTokenA}).status(t, addr); got != 200 {
		t.Errorf("bearer from the token file, whitespace trimmed = %d, want 200", got)
	}
	if got := (httpReq{path: "/status"}).status(t, addr); got != 401 {
		t.Errorf("no token = %d, want 401", got)
	}

	// A reload reads the file again.
	if err := os.WriteFile(file, []byte(testTokenB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := hs.Apply(c); err != nil {
		t.Fatal(err)
	}
	if got := (httpReq{path: "/status", bearer: testTokenB}).status(t, addr); got != 200 {
		t.Errorf("rotated token = %d, want 200", got)
	}
	if got := (httpReq{path: "/status", bearer: testTokenA}).status(t, addr); got != 401 {
		t.Errorf("old token after rotation = %d, want 401", got)
	}

	// Broken files are refused, naming the field, and the token stays.
	empty := filepath.Join(dir, "empty")
	short := filepath.Join(dir, "short")
	os.WriteFile(empty, []byte(" \n\t\n"), 0o600)
	os.WriteFile(short, []byte("short\n"), 0o600)
	for _, f := range []string{empty, short, filepath.Join(dir, "absent")} {
		bad := configs.HTTP{Listen: "127.0.0.1:0", TokenFile: f}
		if err := hs.Apply(bad); err == nil || !strings.Contains(err.Error(), "http.token_file") {
			t.Errorf("Apply with token_file %s = %v, want an http.token_file error", filepath.Base(f), err)
		}
		if _, err := newHTTPServer(bad, prometheus.NewRegistry(), nil, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "http.token_file") {
			t.Errorf("newHTTPServer with token_file %s = %v, want an http.token_file error", filepath.Base(f), err)
		}
	}
	if got := (httpReq{path: "/status", bearer: testTokenB}).status(t, addr); got != 200 {
		t.Errorf("token after refused Applies = %d, want 200", got)
	}
}

// TestHTTPGuardedNeedsToken: beyond loopback the server itself refuses to
// start without a token, whatever validation let through.
func TestHTTPGuardedNeedsToken(t *testing.T) {
	_, err := newHTTPServer(configs.HTTP{Listen: "0.0.0.0:0"}, prometheus.NewRegistry(), nil, nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "http.token") {
		t.Fatalf("newHTTPServer on 0.0.0.0 without a token = %v, want an http.token error", err)
	}
}

func TestShortDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {0, "0s"}, {1499 * time.Millisecond, "1s"}, {59 * time.Second, "59s"},
		{65 * time.Second, "1m05s"}, {3599 * time.Second, "59m59s"}, {3600 * time.Second, "1h00m"},
		{50*time.Hour + 4*time.Minute, "50h04m"},
	} {
		if got := shortDuration(tc.d); got != tc.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// FuzzHTTPAuth: no Authorization header or Cookie header lets a request
// in unless it carries the token or the session cookie's value.
func FuzzHTTPAuth(f *testing.F) {
	s := &httpServer{key: []byte("fuzz-key-0123456789abcdef012345")}
	a, err := s.loadAuth(configs.HTTP{Token: testTokenA})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("Bearer "+testTokenA, "")
	f.Add("bearer  "+testTokenA+" ", "")
	f.Add("Bearer "+testTokenA[:20], "")
	f.Add("Basic "+testTokenA, "")
	f.Add("", sessionCookie+"="+a.cookie)
	f.Add("", sessionCookie+"="+a.cookie[:10]+"; "+sessionCookie+"="+testTokenA)
	f.Add("Bearer", `scangw_session=""`)
	f.Fuzz(func(t *testing.T, authz, cookie string) {
		r := httptest.NewRequest("GET", "/status", nil)
		r.Header.Set("Authorization", authz)
		r.Header.Set("Cookie", cookie)
		if s.authorized(a, r) && !strings.Contains(authz, testTokenA) && !strings.Contains(cookie, a.cookie) {
			t.Fatalf("authorized with Authorization %q, Cookie %q", authz, cookie)
		}
	})
}
