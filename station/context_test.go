package station

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
)

func TestModeAndContextChangesAreRecordedAndSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	buf, err := buffer.Open(buffer.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	newSt := func(sc *playback) *Station {
		cfg := Config{ID: "dock-3", Mode: "receive", Site: "plant-a", Gateway: "gw-1"}
		return New(cfg, Deps{Scanners: []Scanner{sc}, Store: buf, State: buf, Validator: LengthRule{Min: 1, Max: 50},
			Metrics: NewMetrics(prometheus.NewRegistry()), Log: slogDiscard(), ClockSynced: func() bool { return true }})
	}
	sc := newPlayback("h1")
	st := newSt(sc)
	ctx := context.Background()
	if err := st.SetMode(ctx, "stock"); !errors.Is(err, ErrBadMode) {
		t.Fatalf("SetMode(stock) = %v", err)
	}
	if err := st.SetContext(ctx, map[string]string{"order": "PO-1234"}); err != nil {
		t.Fatal(err)
	}
	if err := st.SetMode(ctx, "ship"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetContext(ctx, map[string]string{"": "x"}); err == nil {
		t.Fatal("empty context key accepted")
	}

	// A restart restores both.
	st2 := newSt(newPlayback("h1", "SER-1"))
	if m, c := st2.State(); m != "ship" || c["order"] != "PO-1234" {
		t.Fatalf("after restart: mode %q context %v", m, c)
	}
	run(t, st2, st2.Scanners()[0].(*playback))

	es, err := buf.Peek(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 {
		t.Fatalf("%d messages stored, want 2 context events and 1 scan", len(es))
	}
	var seqs []uint64
	for i, e := range es {
		if err := schema.Check(e.Payload); err != nil {
			t.Fatalf("message %d: %v\n%s", i, err, e.Payload)
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Seq     uint64            `json:"seq"`
				Mode    string            `json:"mode"`
				Context map[string]string `json:"context"`
			} `json:"data"`
		}
		json.Unmarshal(e.Payload, &ev)
		seqs = append(seqs, ev.Data.Seq)
		want := []string{wire.ContextType, wire.ContextType, wire.ScanType}[i]
		if ev.Type != want {
			t.Fatalf("message %d is %s, want %s", i, ev.Type, want)
		}
		if i == 2 && (ev.Data.Mode != "ship" || ev.Data.Context["order"] != "PO-1234") {
			t.Fatalf("scan after the changes: %s", e.Payload)
		}
	}
	if seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 {
		t.Fatalf("seqs %v: scans and events share one gap-free sequence", seqs)
	}
	if es[0].Stream != wire.EventStream("dock-3") {
		t.Fatalf("context event stream %q", es[0].Stream)
	}
	buf.Close()
}
