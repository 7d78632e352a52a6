package hidscan

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/device"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the decoders' output")

const waitLimit = 5 * time.Second

// TestRecordings plays every testdata/*.hid case through a Scanner with a
// playback device and compares the reads with the case's .golden file.
func TestRecordings(t *testing.T) {
	files, err := filepath.Glob("testdata/*.hid")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("%d recordings, want at least 30", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".hid")
		t.Run(name, func(t *testing.T) {
			rec := loadRecording(t, file)
			got := renderReads(playRecording(t, rec))
			golden := strings.TrimSuffix(file, ".hid") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("reads differ from %s\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// playRecording runs a Scanner over rec until the playback device is idle
// and returns every Read it handed over.
func playRecording(t *testing.T, rec recording) []device.Read {
	t.Helper()
	clock := newFakeClock()
	pb := newPlayback(t, rec.steps, clock)
	opened := false
	open := func(Match) (Device, Info, error) {
		if opened {
			return nil, Info{}, fmt.Errorf("recording already played")
		}
		opened = true
		return pb, Info{VID: 0x0c2e, PID: 0x0b61, Path: "1-1:1.0"}, nil
	}
	s := NewWithOpener(rec.cfg, nil, nil, open)
	s.now = clock.Now
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reads []device.Read
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func(_ context.Context, rd device.Read) { reads = append(reads, rd) })
	}()
	select {
	case <-pb.idle:
	case err := <-done:
		t.Fatalf("Run returned early: %v", err)
	case <-time.After(waitLimit):
		t.Fatalf("recording not played within %v", waitLimit)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return within %v of cancel", waitLimit)
	}
	return reads
}

// renderReads formats reads one per line: "read" or "error", the data as
// a Go string literal, the symbology, the time after the recording's
// start, and the error.
func renderReads(reads []device.Read) string {
	var b strings.Builder
	for _, rd := range reads {
		kind := "read"
		if rd.Err != nil {
			kind = "error"
		}
		fmt.Fprintf(&b, "%s %s", kind, strconv.Quote(string(rd.Data)))
		if rd.Symbology != "" {
			fmt.Fprintf(&b, " sym=%s", rd.Symbology)
		}
		fmt.Fprintf(&b, " at=+%v", rd.Time.Sub(clockStart))
		if rd.Err != nil {
			fmt.Fprintf(&b, " (%v)", rd.Err)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
