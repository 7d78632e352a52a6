package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/device/hidscan"
	"github.com/scangw/scangw/device/serialscan"
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
