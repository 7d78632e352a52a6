package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/device/hidscan"
	"github.com/scangw/scangw/device/serialscan"
	"github.com/scangw/scangw/device/serialsim"
)

func TestNewScannerPicksTheDriver(t *testing.T) {
	cfg, err := configs.Parse([]byte(`
gateway: {id: gw, site: s}
stations:
  - id: st
    scanners:
      - {id: ser, port: /dev/ttyACM0}
      - {id: usb, type: hid, match: {vid: 0x0c2e, pid: 0x0b61}, protocol: hidpos}
`))
	if err != nil {
		t.Fatal(err)
	}
	dm := device.NewMetrics(prometheus.NewRegistry())
	log := slog.New(slog.DiscardHandler)
	if _, ok := newScanner(cfg.Stations[0].Scanners[0], log, dm, nil).(*serialscan.Scanner); !ok {
		t.Error("serial scanner not driven by serialscan")
	}
	if _, ok := newScanner(cfg.Stations[0].Scanners[1], log, dm, nil).(*hidscan.Scanner); !ok {
		t.Error("hid scanner not driven by hidscan")
	}
}

func TestRunRefusesAnHTTPPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg, err := configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: gw, site: s}
buffer:  {dir: %q}
mqtt:    {broker: "tcp://127.0.0.1:1"}
http:    {listen: %q}
stations:
  - id: st
    scanners: [{id: h1, port: /dev/scangw-test-absent}]
`, t.TempDir(), ln.Addr().String())))
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "http.listen") {
		t.Fatalf("run = %v, want an http.listen error", err)
	}
}

// TestReadyOnlyOncePortsAreOpen starts the daemon again and again with a
// pty scanner that keeps sending, and one configured on a port that does
// not exist: /readyz turns 200 only once the pty's port is open (the
// absent one does not hold it back), and no stored scan ever holds a CR
// that cooked mode turned into LF.
func TestReadyOnlyOncePortsAreOpen(t *testing.T) {
	for start := range 8 {
		line, err := serialsim.OpenCooked()
		if err != nil {
			t.Fatal(err)
		}
		httpAddr := freeAddr(t)
		cfg, err := configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: gw-ready, site: s}
buffer:  {dir: %q}
mqtt:    {broker: "tcp://127.0.0.1:1"}
http:    {listen: %q}
log:     {level: warn}
stations:
  - id: st
    scanners:
      - {id: h1, port: %q, terminator: "\r\n"}
      - {id: h2, port: /dev/scangw-test-absent}
`, t.TempDir(), httpAddr, line.Path())))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		sending := make(chan struct{})
		go func() { // the scanner retransmits while the gateway starts
			defer close(sending)
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ctx.Err() == nil; i++ {
				if _, err := line.Master().Write([]byte(fmt.Sprintf("PC-%d\r\n", i))); err != nil {
					return
				}
				<-tick.C
			}
		}()
		done := make(chan error, 1)
		go func() { done <- run(ctx, cfg, slog.New(slog.DiscardHandler)) }()
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get("http://" + httpAddr + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("start %d: never ready", start)
			}
			time.Sleep(2 * time.Millisecond)
		}
		var st statusReport
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+httpAddr+"/status")), &st); err != nil {
			t.Fatal(err)
		}
		if sc := st.Stations[0].Scanners; !sc[0].Up || sc[1].Up {
			t.Fatalf("start %d: ready with scanners %+v, want h1 open and h2 down", start, sc)
		}
		cancel()
		<-sending
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		line.Close()
		checkNoCookedScans(t, cfg.Buffer.Dir, start)
	}
}

// checkNoCookedScans reads a stopped gateway's buffer: no scan may hold an
// LF, which only cooked mode could have made of the scanner's CR.
func checkNoCookedScans(t *testing.T, dir string, start int) {
	t.Helper()
	b, err := buffer.Open(buffer.Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	es, err := b.Peek(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		var ev struct {
			Data struct{ Raw string } `json:"data"`
		}
		json.Unmarshal(e.Payload, &ev)
		if strings.ContainsAny(ev.Data.Raw, "\r\n") {
			t.Fatalf("start %d: stored scan %q joins frames cooked mode mangled", start, ev.Data.Raw)
		}
	}
}
