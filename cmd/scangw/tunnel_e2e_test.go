package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scangw/scangw/configs"
	"github.com/scangw/scangw/device/serialsim"
	"github.com/scangw/scangw/station/wire"
	"github.com/scangw/scangw/station/wire/schema"
	"github.com/scangw/scangw/uplink/mosquittotest"
)

// fakeReader is a fixed reader's end of a TCP connection: it sends result
// frames and, for each code, waits for the gateway's acknowledgement byte.
type fakeReader struct {
	t    *testing.T
	name string
	conn net.Conn
}

// send writes frame and returns the feedback byte (0 for a no-read, which
// gets none).
func (r *fakeReader) send(frame string, noRead bool) byte {
	r.t.Helper()
	if _, err := r.conn.Write([]byte(frame + "\r\n")); err != nil {
		r.t.Fatalf("%s: write: %v", r.name, err)
	}
	if noRead {
		return 0
	}
	r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(r.conn, b); err != nil {
		r.t.Fatalf("%s: no answer to %q: %v", r.name, frame, err)
	}
	return b[0]
}

// TestTunnel runs a conveyor tunnel through the whole daemon and a real
// broker: two TCP readers (one the gateway dials, one that dials the
// gateway) read every label three times each, one in ten labels is a
// no-read on the first reader, and a serial scanner scans too. Exactly one
// scan per label reaches the broker, the no-reads are events in the same
// gap-free seq, every code got its ACK, and the metrics count what
// happened.
func TestTunnel(t *testing.T) {
	broker := mosquittotest.Start(t, mosquittotest.Options{})
	topListener, err := net.Listen("tcp", "127.0.0.1:0") // the "top" reader's result port
	if err != nil {
		t.Fatal(err)
	}
	defer topListener.Close()
	sideAddr := freeAddr(t) // where the gateway listens for the "side" reader
	line, err := serialsim.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer line.Close()
	httpAddr := freeAddr(t)
	cfg, err := configs.Parse([]byte(fmt.Sprintf(`
gateway: {id: gw-tunnel, site: plant-t}
buffer:  {dir: %q}
mqtt:    {broker: %q, topic_prefix: scangw/v1, reconnect_min: 20ms, reconnect_max: 300ms}
http:    {listen: %q}
log:     {level: warn}
stations:
  - id: tunnel-1
    min_length: 3
    debounce: 1m
    noread_events: true
    scanners:
      - {id: top, type: tcp, connect: %q, noread: [NOREAD], debounce: 1m, feedback: {good: "\x06", bad: "\x15"}}
      - {id: side, type: tcp, listen: %q, allow: [127.0.0.0/8], feedback: {good: "\x06", bad: "\x15"}}
      - {id: hand, port: %q, terminator: "\r\n", feedback: {good: "\x06", bad: "\x15"}}
`, t.TempDir(), broker.URL(), httpAddr, topListener.Addr().String(), sideAddr, line.Path())))
	if err != nil {
		t.Fatal(err)
	}
	sub := mosquittotest.Subscribe(t, broker, "central-tunnel", "scangw/v1/plant-t/gw-tunnel/+/tunnel-1")
	startDaemon(t, cfg)

	topListener.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
	topConn, err := topListener.Accept()
	if err != nil {
		t.Fatalf("the gateway never dialled the top reader: %v", err)
	}
	defer topConn.Close()
	var sideConn net.Conn
	for deadline := time.Now().Add(20 * time.Second); ; {
		if sideConn, err = net.Dial("tcp", sideAddr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway never listened for the side reader: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	defer sideConn.Close()
	top, side := &fakeReader{t, "top", topConn}, &fakeReader{t, "side", sideConn}

	const labels = 50
	for i := range labels {
		code := fmt.Sprintf("L-%04d", i)
		for range 3 {
			if i%10 == 0 {
				top.send("NOREAD", true)
				break
			}
			if b := top.send(code, false); b != 0x06 {
				t.Fatalf("top: %s answered %#x, want ACK", code, b)
			}
		}
		for range 3 {
			if b := side.send(code, false); b != 0x06 {
				t.Fatalf("side: %s answered %#x, want ACK (a repeat is answered like the first read)", code, b)
			}
		}
	}
	for i := range 5 {
		if b, err := line.Send(context.Background(), fmt.Sprintf("H-%04d", i), "\r\n", 20*time.Second); err != nil || b != 0x06 {
			t.Fatalf("hand scan %d: %#x, %v", i, b, err)
		}
	}

	want := labels + 5 + labels/10 // scans, and the no-read events
	topics := wire.TopicsFor("scangw/v1", "plant-t", "gw-tunnel")
	buffered := func(m mosquittotest.Message) bool { // scans and no-reads, not the live indicator
		r, _, _ := topics.Route(m.Topic)
		return !slices.Contains(r.Types, wire.IndicatorType)
	}
	sub.WaitFor(30*time.Second, "every scan and no-read at the broker", func(ms []mosquittotest.Message) bool {
		n := 0
		for _, m := range ms {
			if buffered(m) {
				n++
			}
		}
		return n >= want
	})
	raws := map[string]int{}
	var seqs []uint64
	noReads := 0
	for _, m := range sub.Messages() {
		if err := schema.CheckMessage(topics, m.Topic, m.Payload); err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		if !buffered(m) {
			continue
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Seq     uint64 `json:"seq"`
				Raw     string `json:"raw"`
				Scanner string `json:"scanner"`
			} `json:"data"`
		}
		json.Unmarshal(m.Payload, &ev)
		seqs = append(seqs, ev.Data.Seq)
		switch ev.Type {
		case wire.ScanType:
			raws[ev.Data.Raw]++
		case wire.NoReadType:
			if ev.Data.Raw != "NOREAD" || ev.Data.Scanner != "top" {
				t.Errorf("no-read event %+v", ev.Data)
			}
			noReads++
		}
	}
	if len(raws) != labels+5 || noReads != labels/10 {
		t.Fatalf("%d distinct scans and %d no-reads at the broker, want %d and %d", len(raws), noReads, labels+5, labels/10)
	}
	for raw, n := range raws {
		if n != 1 {
			t.Errorf("%s reached the broker %d times, want once", raw, n)
		}
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("seq %v is not gap-free from 1", seqs)
		}
	}

	// 45 labels read 3 times by each reader (top stores, 2 + 3 repeats),
	// 5 read 3 times by side alone (2 repeats each).
	metrics := httpGet(t, "http://"+httpAddr+"/metrics")
	for _, want := range []string{
		`scangw_station_reads_suppressed_total{reason="repeat",scanner="top",station="tunnel-1"} 90`,
		`scangw_station_reads_suppressed_total{reason="repeat",scanner="side",station="tunnel-1"} 145`,
		`scangw_device_noreads_total{scanner="top"} 5`,
		`scangw_station_noread_events_total{result="stored",station="tunnel-1"} 5`,
		`scangw_station_reads_total{scanner="top",station="tunnel-1"} 140`,
		`scangw_station_reads_total{scanner="side",station="tunnel-1"} 150`,
		`scangw_station_scans_total{station="tunnel-1",verdict="accepted"} 55`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var st statusReport
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+httpAddr+"/status")), &st); err != nil {
		t.Fatal(err)
	}
	// top read each label once (its repeats do not count), and one in ten
	// was a no-read.
	if rate := st.Stations[0].Scanners[0].ReadRate; rate == nil || *rate != 0.9 {
		t.Errorf("top's read rate %v, want 0.9", rate)
	}
}
