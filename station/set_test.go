package station

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/device"
	"github.com/scangw/scangw/station/wire"
)

// TestSet drives a station through the Set as downlink commands do: the
// requests a sender got wrong are *wire.Error with their reply code and
// change nothing; the others are recorded and reported.
func TestSet(t *testing.T) {
	buf, err := buffer.Open(buffer.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	st := New(Config{ID: "dock-3", Mode: "receive", Site: "s", Gateway: "g"},
		Deps{Scanners: []Scanner{newPlayback("h1"), device.Down("h2", nil)}, Store: buf, State: buf,
			Validator: LengthRule{Min: 1}, Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard()})
	set, err := NewSet(st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	code := func(err error) string {
		var we *wire.Error
		if errors.As(err, &we) {
			return we.Code
		}
		if err != nil {
			return "other: " + err.Error()
		}
		return ""
	}
	for _, tc := range []struct {
		name string
		do   func() error
		code string
	}{
		{"set mode", func() error { _, err := set.SetMode(ctx, "dock-3", "ship"); return err }, ""},
		{"bad mode", func() error { _, err := set.SetMode(ctx, "dock-3", "stock"); return err }, wire.CodeBadArgs},
		{"unknown station", func() error { _, err := set.SetMode(ctx, "dock-9", "ship"); return err }, wire.CodeUnknownStation},
		{"no station", func() error { _, err := set.SetMode(ctx, "", "ship"); return err }, wire.CodeUnknownStation},
		{"set context", func() error {
			_, err := set.SetContext(ctx, "dock-3", map[string]string{"order": "PO-1"})
			return err
		}, ""},
		{"context key empty", func() error { _, err := set.SetContext(ctx, "dock-3", map[string]string{"": "x"}); return err }, wire.CodeBadArgs},
		{"context too long", func() error {
			_, err := set.SetContext(ctx, "dock-3", map[string]string{"order": strings.Repeat("x", 257)})
			return err
		}, wire.CodeBadArgs},
		{"context unknown station", func() error { _, err := set.SetContext(ctx, "dock-9", nil); return err }, wire.CodeUnknownStation},
		{"station status", func() error { _, err := set.Status("dock-3"); return err }, ""},
		{"status unknown station", func() error { _, err := set.Status("dock-9"); return err }, wire.CodeUnknownStation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := code(tc.do()); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
		})
	}
	if mode, c := st.State(); mode != "ship" || c["order"] != "PO-1" {
		t.Fatalf("state after commands: %q %v (bad commands must change nothing)", mode, c)
	}
	all, err := set.Status("")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(all)
	// The down scanner is reported down, the playback (no Connected
	// method) up, and the station not running (Run was not called).
	if want := `[{"id":"dock-3","mode":"ship","context":{"order":"PO-1"},"running":false,"scanners":[{"id":"h1","up":true},{"id":"h2","up":false}]}]`; string(b) != want {
		t.Fatalf("status %s, want %s", b, want)
	}
	if depth := buf.Depth(); depth != 2 {
		t.Fatalf("%d events recorded, want 2 (one per accepted change)", depth)
	}
}

func TestSetRefusesDuplicateIDs(t *testing.T) {
	mk := func() *Station {
		return New(Config{ID: "dock-1", Mode: "receive"}, Deps{Store: failingStore{}, Validator: LengthRule{},
			Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard()})
	}
	if _, err := NewSet(mk(), mk()); err == nil {
		t.Fatal("two stations with one id accepted")
	}
}

// TestSetStoreFailureIsNotBadArgs: a change the buffer could not record is
// the gateway's failure, not the sender's mistake.
func TestSetStoreFailureIsNotBadArgs(t *testing.T) {
	st := New(Config{ID: "dock-1", Mode: "receive"}, Deps{Store: failingStore{}, Validator: LengthRule{},
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard()})
	set, _ := NewSet(st)
	_, err := set.SetContext(context.Background(), "dock-1", map[string]string{"order": "PO-1"})
	var we *wire.Error
	if err == nil || errors.As(err, &we) {
		t.Fatalf("store failure reported as %v, want a plain error", err)
	}
	if _, c := st.State(); c != nil {
		t.Fatalf("context %v applied although not recorded", c)
	}
}
