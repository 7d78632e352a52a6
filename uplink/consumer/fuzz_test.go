package consumer

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/scangw/scangw/station/wire"
)

// FuzzParse feeds topics and payloads to the decoder: it never panics; an
// event it accepts names a valid gateway and station whose scans or
// events topic it came on, with a type that topic carries, a seq and an
// epoch; and the event encoded again by package wire decodes the same.
func FuzzParse(f *testing.F) {
	scan := encodeScan(f, "plant-a", "gw-1", "dock-1", 7, "e1", "A\u001d7<&>")
	ctx, _ := wire.Event{ID: "c1", Source: wire.StationSource("plant-a", "gw-1", "dock-1"), Type: wire.ContextType, Time: t0,
		Data: &wire.ContextData{Seq: 8, Epoch: "e1", Station: "dock-1", Mode: "ship", Context: map[string]string{"order": "PO-1"}}}.Encode()
	base := "scangw/v1/plant-a/gw-1/"
	for _, seed := range []struct{ topic, payload string }{
		{base + "scans/dock-1", string(scan)},
		{base + "events/dock-1", string(ctx)},
		{base + "events/dock-1", string(scan)},
		{base + "status", `{"specversion":"1.0","id":"s1","source":"scangw://plant-a/gw-1","type":"io.scangw.status.v1","time":"2026-11-27T06:00:00Z","data":{"state":"online","epoch":"e2"}}`},
		{base + "reply", `{"specversion":"1.0","id":"r1","source":"scangw://plant-a/gw-1","type":"io.scangw.reply.v1","time":"2026-11-27T06:00:00Z","data":{"id":"resend-1","ok":true,"result":{"requeued":4}}}`},
		{base + "reply", `{"specversion":"1.0","id":"r1","type":"io.scangw.reply.v1","time":"2026-11-27T06:00:00Z","data":{"id":"x","ok":false,"error":{"code":"bad_args"},"result":[1]}}`},
		{base + "scans/dock-1", `{"specversion":"1.0","id":"x","type":"io.scangw.scan.v1","time":"2026-11-27T06:00:00Z","data":{"seq":18446744073709551615,"epoch":"e","station":"dock-1"}}`},
		{base + "scans/dock-1", `{"specversion":"1.0","id":"x","type":"io.scangw.scan.v1","time":"2026-11-27T06:00:00Z","data":{"seq":1e3,"epoch":"e","station":"dock-1"}}`},
		{base + "scans/dock-1", `{"data":null}`},
		{"scangw/v1/+/gw-1/scans/dock-1", string(scan)},
		{"scangw/v1", ""},
		{"", "{"},
	} {
		f.Add(seed.topic, []byte(seed.payload))
	}
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		m, err := parse(testPrefix, topic, payload)
		if err != nil || m.kind != kindEvent {
			return
		}
		e := m.event
		tp := wire.TopicsFor(testPrefix, e.Site, e.Gateway)
		if !wire.ValidID(e.Site) || !wire.ValidID(e.Gateway) || !wire.ValidID(e.Station) ||
			(topic != tp.Of(wire.ScanStream(e.Station)) && topic != tp.Of(wire.EventStream(e.Station))) {
			t.Fatalf("event of %s/%s/%s from topic %q", e.Site, e.Gateway, e.Station, topic)
		}
		if r, _, _ := tp.Route(topic); !slices.Contains(r.Types, e.Type) {
			t.Fatalf("type %q on %q", e.Type, topic)
		}
		if e.Seq == 0 || e.Epoch == "" || e.ID == "" || !bytes.Equal(e.Payload, payload) {
			t.Fatalf("accepted %+v", e)
		}
		again, err := wire.Event{ID: e.ID, Source: wire.StationSource(e.Site, e.Gateway, e.Station), Type: e.Type, Time: e.Time, Data: e.Data}.Encode()
		if err != nil {
			t.Fatalf("encode %+v: %v", e, err)
		}
		m2, err := parse(testPrefix, topic, again)
		if err != nil {
			t.Fatalf("re-encoded %s refused: %v", again, err)
		}
		e2 := m2.event
		if e2.ID != e.ID || e2.Seq != e.Seq || e2.Epoch != e.Epoch || e2.Type != e.Type || !e2.Time.Equal(e.Time) || !jsonEqual(e2.Data, e.Data) {
			t.Fatalf("round trip changed %+v into %+v", e, e2)
		}
	})
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && slices.Equal(mustJSON(x), mustJSON(y))
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// FuzzTracker drives the tracker with arbitrary arrivals, clock steps,
// requests and replies: every seq is delivered exactly once, and its
// record stays consistent (invariants) and within its bounds.
func FuzzTracker(f *testing.F) {
	f.Add([]byte{1, 2, 3, 5, 4, 0x80, 9, 7, 0xc0, 0xe0, 6, 8})
	f.Add([]byte{10, 0x81, 0x81, 0xc1, 1, 2, 3, 0xe1, 0x90, 4})
	f.Add([]byte{0x20, 0x40, 0x60, 0x21, 1, 0x22, 0xff, 0xf0, 0x7f})
	f.Fuzz(func(t *testing.T, ops []byte) {
		tr := newTracker(time.Second, 8*time.Second, true, func(Gap) {}, func(Epoch) {}, discard)
		tr.maxSpans, tr.maxGateways = 8, 2
		now := t0
		seen := map[[3]uint64]bool{}
		var replies []string
		for i, op := range ops {
			switch {
			case op < 0x80: // an event: gateway, epoch and seq from the byte
				gw, epoch, seq := uint64(op>>6), uint64(op>>5&1), uint64(op&0x1f)+1
				ev := Event{Site: "s", Gateway: string(rune('a' + gw)), Epoch: string(rune('0' + epoch)), Seq: seq}
				k := [3]uint64{gw, epoch, seq}
				first := tr.event(&ev, now)
				if first && seen[k] {
					t.Fatalf("op %d: %v delivered twice", i, k)
				}
				// Two gateways and three epochs stay within the bounds,
				// so nothing is forgotten that could arrive again.
				seen[k] = seen[k] || first
			case op < 0xc0: // the clock moves
				now = now.Add(time.Duration(op&0x3f) * 100 * time.Millisecond)
			case op < 0xe0: // requests go out
				for _, a := range tr.due(now) {
					if a.from == 0 || a.to < a.from {
						t.Fatalf("op %d: ask %+v", i, a)
					}
					replies = append(replies, a.id)
				}
			default: // a reply to one of them
				if len(replies) > 0 {
					id := replies[int(op)%len(replies)]
					tr.reply(reply{id: id, ok: op&1 == 0, requeued: int(op>>1) & 1, code: wire.CodeExpired}, now)
				}
				tr.status("s", "a", "2", wire.Online, op&2 == 0, now)
			}
			if err := invariants(tr); err != nil {
				t.Fatalf("op %d (%#x): %v", i, op, err)
			}
		}
	})
}
