package device

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReopenOpenCancelled: an open that takes ctx (a TCP dial) and fails
// because ctx ended is shutdown, not an outage: Run returns nil without
// counting an error or warning, and still settles.
func TestReopenOpenCancelled(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	settled := false
	r := Reopen{What: "reader connection", Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Metrics: m.Scanner("t"), MinBackoff: time.Hour, MaxBackoff: time.Hour,
		Settled: func() { settled = true }}
	err := r.Run(ctx, func() (Session, error) {
		cancel() // ctx ends while the dial is under way
		<-ctx.Done()
		return Session{}, errors.New("dial: operation was canceled")
	}, nil)
	if err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if got := testutil.ToFloat64(m.Errors.WithLabelValues("t", "io")); got != 0 {
		t.Errorf("io errors = %v, want 0", got)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %q, want nothing", logs.String())
	}
	if !settled {
		t.Error("not settled")
	}
}
