package main

import (
	"log/slog"
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
