package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station"
	"github.com/scangw/scangw/uplink"
)

// gatewayHealth reports the buffer's backlog, the clock, and the stations
// with their scanners up or down, in each heartbeat.
func gatewayHealth(buf *buffer.Buffer, stations []*station.Station) func() uplink.Health {
	return func() uplink.Health {
		h := uplink.Health{Backlog: buf.Depth(), ClockSynced: station.KernelClockSynced()}
		if oldest, ok := buf.Oldest(); ok {
			h.OldestAge = max(time.Since(oldest), 0)
		}
		for _, st := range stations {
			sh := uplink.StationHealth{ID: st.ID(), Running: st.Running()}
			for _, sc := range st.Scanners() {
				sh.Scanners = append(sh.Scanners, uplink.ScannerHealth{ID: sc.ID, Up: sc.Up})
			}
			h.Stations = append(h.Stations, sh)
		}
		return h
	}
}

// uplinkSetupError names each unusable setting by its config path.
func uplinkSetupError(err error) error {
	var lines []string
	for _, e := range unjoin(err) {
		var se *uplink.SetupError
		if errors.As(e, &se) {
			lines = append(lines, fmt.Sprintf("mqtt.%s: %v", se.Setting, se.Err))
		} else {
			lines = append(lines, e.Error())
		}
	}
	return fmt.Errorf("config: %s", strings.Join(lines, "\n"))
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
