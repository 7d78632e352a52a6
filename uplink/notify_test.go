package uplink

import (
	"fmt"
	"testing"
	"time"

	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// indicatorPayload is a station's indicator event for the read of seq.
func indicatorPayload(t testing.TB, station string, seq int) []byte {
	t.Helper()
	b, err := wire.Event{
		ID: wire.NewID(), Source: wire.StationSource("site1", "gw1", station), Type: wire.IndicatorType, Time: time.Now(),
		Data: wire.IndicatorData{Station: station, Scanner: "h1", Seq: uint64(seq), Verdict: wire.Accepted, Reasons: []wire.Reason{}},
	}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestNotices sends live notices through Config.Notices: made before the
// uplink, they are dropped (and counted) while no session publishes them,
// and published in order during one, on the station's indicator topic, at
// QoS 0 and not retained.
func TestNotices(t *testing.T) {
	t.Parallel()
	br := mosquittotest.Start(t, mosquittotest.Options{})
	sub := mosquittotest.Subscribe(t, br, "sub-notices", "t/site1/gw1/indicator/#")
	notices := NewNotices()
	stream := wire.IndicatorStream("dock-3")
	notices.Notify(stream, indicatorPayload(t, "dock-3", 1)) // no uplink yet

	cfg := testConfig(br.URL(), newMemQueue())
	cfg.Notices = notices
	_, reg, stop := runUplink(t, cfg, newMemQueue())
	if n := metricValue(t, reg, "scangw_mqtt_notices_dropped_total"); n != 1 {
		t.Errorf("scangw_mqtt_notices_dropped_total = %v after a notice without a session, want 1", n)
	}
	waitUntil(t, 10*time.Second, "the session to publish notices", notices.open.Load)
	const n = 20
	var sent []string
	for i := range n {
		p := indicatorPayload(t, "dock-3", i+2)
		sent = append(sent, string(p))
		notices.Notify(stream, p)
	}
	sub.WaitCount(n, 10*time.Second)
	for i, m := range sub.Messages() {
		if err := checkContract(m.Topic, m.Payload); err != nil {
			t.Errorf("notice %d: %v", i, err)
		}
		if m.Topic != "t/site1/gw1/indicator/dock-3" || m.Retained || m.QoS != 0 || string(m.Payload) != sent[i] {
			t.Errorf("notice %d = %+v, want %s on indicator/dock-3 at QoS 0, not retained", i, m, sent[i])
		}
	}
	if n := metricValue(t, reg, "scangw_mqtt_notices_dropped_total"); n != 1 {
		t.Errorf("scangw_mqtt_notices_dropped_total = %v, want still 1: none dropped during the session", n)
	}

	stop()
	if notices.open.Load() {
		t.Fatal("notices still open after the uplink returned")
	}
	notices.Notify(stream, indicatorPayload(t, "dock-3", n+2))
	if got := metricValue(t, reg, "scangw_mqtt_notices_dropped_total"); got != 2 {
		t.Errorf("scangw_mqtt_notices_dropped_total = %v after a notice once the uplink stopped, want 2", got)
	}
	if c := sub.Count(); c != n {
		t.Errorf("%d notices arrived, want %d", c, n)
	}
}

// TestNoticesNeverBlock fills the queue of notices while a session is up
// and ready: Notify returns at once every time, whatever it drops, and a
// dropped notice is counted.
func TestNoticesNeverBlock(t *testing.T) {
	t.Parallel()
	notices := NewNotices()
	notices.open.Store(true) // as a session does; nothing drains it here
	for i := range noticeQueue + 10 {
		notices.Notify(wire.IndicatorStream("s1"), fmt.Appendf(nil, "%d", i))
	}
	if got := notices.dropped.Load(); got != 10 {
		t.Errorf("%d notices dropped past a queue of %d, want 10", got, noticeQueue)
	}
}
