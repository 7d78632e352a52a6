//go:build demo

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/sync/errgroup"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/wire"
)

// The demo gateway's ids and topic prefix.
const (
	demoPrefix  = "scangw/v1"
	demoSite    = "demo-site"
	demoGateway = "gw-demo"
)

// demoScans is what the simulated scanners type: GS1 codes with AIM
// prefixes, plain serials, and some that the station must reject.
var demoScans = []string{
	"PO-1234", // a purchase order's barcode: a document, it sets the station's context
	"]d2010950600013435221SN0001\x1d10LOT42\x1d17281231", // GS1 DataMatrix: GTIN, serial, lot, expiry
	"]C100106141411234567897",                            // GS1-128 SSCC of a pallet
	"SER-7731-A",                                         // a plain serial
	"",                                                   // empty: rejected
	"]d2010950600013435321SN0002",                        // GTIN check digit wrong: rejected
	"X",                                                  // too short for this station: rejected
	"MODEL9\tSERIAL",                                     // a control character: rejected
	"]Q3https://id.example.com/01/09506000134352/21/SN0003", // GS1 Digital Link in a QR code
}

// demo runs the real daemon — real serial driver on real ptys, real Badger
// buffer, real MQTT uplink — against an embedded broker, with simulated
// ACK/NAK scanners typing scans, and prints what the broker receives.
func demo(ctx context.Context, out io.Writer, perScanner int, dir string) error {
	p := &printer{w: out}
	// Free ports: 1883 may belong to a system broker. The status page's
	// is named so it can be opened while the scans run.
	addr, err := freePort()
	if err != nil {
		return err
	}
	httpAddr, err := freePort()
	if err != nil {
		return err
	}
	var received atomic.Int64
	broker, err := demoBroker(addr, p, &received)
	if err != nil {
		return err
	}
	defer broker.Close()

	if dir == "" {
		if dir, err = os.MkdirTemp("", "scangw-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	var sims []*simScanner
	for i, id := range []string{"handheld-1", "handheld-2"} {
		line, err := serialsim.Open()
		if err != nil {
			return err
		}
		defer line.Close()
		sims = append(sims, &simScanner{id: id, line: line, p: p, offset: i})
	}
	cfg, err := demoConfig(dir, addr, httpAddr, sims)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "scangw demo: broker on %s, buffer in %s, scanners on %s and %s\n", addr, dir, sims[0].line.Path(), sims[1].line.Path())
	fmt.Fprintf(out, "status page: http://%s/ (JSON at /status, Prometheus at /metrics)\n", httpAddr)
	fmt.Fprintln(out, "Ctrl-C stops it. Each scan: what the scanner typed and heard back, then what the broker received.")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	log, _ := newLogger(cfg.Log, os.Stderr)
	g.Go(func() error { return run(gctx, cfg, log) })
	var typed sync.WaitGroup
	for _, s := range sims {
		typed.Add(1)
		g.Go(func() error {
			defer typed.Done()
			return s.run(gctx, perScanner)
		})
	}
	if perScanner > 0 {
		g.Go(func() error {
			typed.Wait()
			if want, ok := awaitReceived(gctx, sims, &received); ok {
				fmt.Fprintf(out, "demo: all %d stored reads reached the broker\n", want)
			}
			cancel()
			return nil
		})
	}
	return g.Wait()
}

// freePort returns a loopback address with a port free right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// demoBroker starts the embedded broker on addr; every message on the demo
// gateway's topics is printed, and received counts its scans.
func demoBroker(addr string, p *printer, received *atomic.Int64) (*mochi.Server, error) {
	broker := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	broker.AddHook(new(auth.AllowHook), nil)
	if err := broker.AddListener(listeners.NewTCP(listeners.Config{ID: "demo", Address: addr})); err != nil {
		return nil, err
	}
	if err := broker.Serve(); err != nil {
		return nil, err
	}
	topics := wire.TopicsFor(demoPrefix, demoSite, demoGateway)
	err := broker.Subscribe(topics.Base+"/#", 1, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		r, _, _ := topics.Route(pk.TopicName)
		if slices.Contains(r.Types, wire.ScanType) || slices.Contains(r.Types, wire.ContextType) {
			received.Add(1) // every read the scanners heard stored: scans and documents
		}
		p.event(r, pk.TopicName, pk.Payload)
	})
	if err != nil {
		broker.Close()
		return nil, err
	}
	return broker, nil
}

// demoConfig is the demo gateway's config: one station, the simulated
// scanners on their ptys in ACK/NAK mode.
func demoConfig(dir, addr, httpAddr string, sims []*simScanner) (*configs.Config, error) {
	var scanners string
	for _, s := range sims {
		scanners += fmt.Sprintf(`
      - {id: %s, type: serial, port: %q, baud: 9600, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}`, s.id, s.line.Path())
	}
	return configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: %s, site: %s}
buffer:  {dir: %q}
mqtt:    {broker: "tcp://%s", topic_prefix: %s, reconnect_max: 2s}
http:    {listen: %q}
log:     {level: warn}
stations:
  - id: dock-3
    mode: receive
    min_length: 3
    documents: [{kind: order, pattern: '(?P<value>PO-[0-9]+)'}]
    scanners:%s
`, demoGateway, demoSite, dir, addr, demoPrefix, httpAddr, scanners)))
}

// awaitReceived waits until the broker received every scan the simulated
// scanners heard stored; ok is false when ctx ended first.
func awaitReceived(ctx context.Context, sims []*simScanner, received *atomic.Int64) (want int64, ok bool) {
	for _, s := range sims {
		want += s.stored.Load()
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for received.Load() < want {
		select {
		case <-ctx.Done():
			return want, false
		case <-t.C:
		}
	}
	return want, true
}

// simScanner acts like a serial scanner in ACK/NAK mode: it sends a scan,
// waits for the gateway's verdict byte, and retransmits on timeout.
type simScanner struct {
	id     string
	line   *serialsim.Pty
	p      *printer
	offset int
	stored atomic.Int64
}

func (s *simScanner) run(ctx context.Context, n int) error {
	for i := 0; n == 0 || i < n; i++ {
		code := demoScans[(i+s.offset)%len(demoScans)]
		for {
			b, err := s.line.Send(ctx, code, "\r\n", 3*time.Second)
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, serialsim.ErrNoFeedback) {
				// A real scanner beeps an error and retransmits.
				s.p.typed(s.id, code, 0)
				s.line.Drain()
				continue
			}
			if err != nil {
				return fmt.Errorf("%s: %w", s.id, err)
			}
			s.stored.Add(1)
			s.p.typed(s.id, code, b)
			break
		}
		if n == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(700 * time.Millisecond): // an operator's pace
			}
		}
	}
	return nil
}

type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) typed(id, code string, verdict byte) {
	v := "no answer, retransmitting"
	switch verdict {
	case 0x06:
		v = "ACK (stored, good beep)"
	case 0x15:
		v = "NAK (stored, bad beep)"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "scanner %-10s typed %-50q heard %s\n", id, code, v)
}

func (p *printer) event(r wire.Route, topic string, payload []byte) {
	var ev struct {
		Type string `json:"type"`
		Data struct {
			Seq      uint64            `json:"seq"`
			Raw      string            `json:"raw"`
			Verdict  string            `json:"verdict"`
			State    string            `json:"state"`
			Context  map[string]string `json:"context"`
			Document *wire.Document    `json:"document"`
			Reasons  []struct {
				Code string `json:"code"`
			} `json:"reasons"`
		} `json:"data"`
	}
	json.Unmarshal(payload, &ev)
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.Contains(r.Types, wire.HeartbeatType) || slices.Contains(r.Types, wire.IndicatorType) {
		return // heartbeats and the live indicator repeat what is shown
	}
	if ev.Data.State != "" {
		fmt.Fprintf(p.w, "broker  %s  %s\n", topic, ev.Data.State)
		return
	}
	if d := ev.Data.Document; d != nil {
		fmt.Fprintf(p.w, "broker  %s  seq=%d document %s %s: the context is now %v\n", topic, ev.Data.Seq, d.Kind, d.Value, ev.Data.Context)
		return
	}
	why := ""
	for _, r := range ev.Data.Reasons {
		why += " " + r.Code
	}
	fmt.Fprintf(p.w, "broker  %s  seq=%d %s%s raw=%q\n", topic, ev.Data.Seq, ev.Data.Verdict, why, ev.Data.Raw)
}
