package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scangw/scangw/buffer"
	"github.com/scangw/scangw/station/wire"
)

func fillBuffer(t *testing.T, dir string, n int) {
	t.Helper()
	b, err := buffer.Open(buffer.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := b.Append(context.Background(), "t/scans/s", func(seq uint64) ([]byte, error) {
			return fmt.Appendf(nil, `{"i":%d,"seq":%d}`, i, seq), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	b.Ack(1) // delivered: not shown
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBufferCommands(t *testing.T) {
	dir := t.TempDir()
	fillBuffer(t, dir, 5)
	ctx := context.Background()

	var out bytes.Buffer
	if err := bufferCmd(ctx, &out, []string{"stats", "--dir", dir}); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Depth   int    `json:"depth"`
		NextSeq int    `json:"next_seq"`
		Format  int    `json:"format"`
		Epoch   string `json:"epoch"`
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("stats not JSON: %v\n%s", err, out.String())
	}
	if st.Depth != 4 || st.NextSeq != 6 || st.Format != buffer.FormatVersion || st.Epoch == "" {
		t.Fatalf("stats = %+v", st)
	}

	out.Reset()
	if err := bufferCmd(ctx, &out, []string{"peek", "--dir", dir, "--n", "2"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"pos":2`) || !strings.Contains(lines[0], `"payload":{"i":1,"seq":2}`) {
		t.Fatalf("peek:\n%s", out.String())
	}
	var line struct {
		Topic string `json:"topic"`
		Seq   uint64 `json:"seq"`
		Epoch string `json:"epoch"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line.Topic != "t/scans/s" || line.Seq != 2 || line.Epoch != st.Epoch {
		t.Fatalf("peek line %+v, want topic t/scans/s, seq 2, epoch %s", line, st.Epoch)
	}

	out.Reset()
	if err := bufferCmd(ctx, &out, []string{"export", "--dir", dir}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 4 {
		t.Fatalf("export gave %d lines:\n%s", n, out.String())
	}
}

func TestBufferCommandsRefuseWhileHeld(t *testing.T) {
	dir := t.TempDir()
	fillBuffer(t, dir, 1)
	live, err := buffer.Open(buffer.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for _, args := range [][]string{{"stats", "--dir", dir}, {"export", "--dir", dir}, {"salvage", "--dir", dir, t.TempDir()}} {
		err := bufferCmd(context.Background(), &bytes.Buffer{}, args)
		if err == nil || !strings.Contains(err.Error(), "held by a running scangw") {
			t.Errorf("%v while held: %v", args, err)
		}
	}
}

func TestBufferSalvageCommand(t *testing.T) {
	from, into := t.TempDir(), t.TempDir()
	fillBuffer(t, from, 3)
	fillBuffer(t, into, 0)
	var out bytes.Buffer
	if err := bufferCmd(context.Background(), &out, []string{"salvage", "--dir", into, from}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "salvaged 2 messages") {
		t.Fatalf("salvage said %q", out.String())
	}
	// Salvaging again finds them all present.
	out.Reset()
	if err := bufferCmd(context.Background(), &out, []string{"salvage", "--dir", into, from}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "salvaged 0 messages") {
		t.Fatalf("second salvage said %q", out.String())
	}
}

func TestBufferCommandUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frob", "--dir", "/x"}, {"salvage", "--dir", "/x"}} {
		if err := bufferCmd(context.Background(), &bytes.Buffer{}, args); err == nil || !strings.Contains(err.Error(), "usage: scangw buffer") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// TestBufferPeekTopics: a peeked line names its stream, and the topic it
// is published on only where that is known (from --config, or a whole
// topic stored by an older version): never a relative stream as a topic.
func TestBufferPeekTopics(t *testing.T) {
	dir := t.TempDir()
	b, err := buffer.Open(buffer.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []string{wire.ScanStream("dock-1"), "old/prefix/s/gw/scans/dock-1"} {
		if _, err := b.Append(context.Background(), stream, func(uint64) ([]byte, error) { return []byte(`{}`), nil }); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	cfgPath := filepath.Join(t.TempDir(), "scangw.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, `
gateway: {id: gw, site: s}
buffer:  {dir: %q}
mqtt:    {topic_prefix: p/v1}
stations:
  - id: dock-1
    scanners: [{id: h1, port: /dev/scangw-test-absent}]
`, dir), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		topics []string
	}{
		{[]string{"peek", "--dir", dir}, []string{"", "old/prefix/s/gw/scans/dock-1"}},
		{[]string{"peek", "--config", cfgPath}, []string{"p/v1/s/gw/scans/dock-1", "old/prefix/s/gw/scans/dock-1"}},
	} {
		var out bytes.Buffer
		if err := bufferCmd(context.Background(), &out, tc.args); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("%v: %d lines:\n%s", tc.args, len(lines), out.String())
		}
		for i, l := range lines {
			var line struct {
				Stream string  `json:"stream"`
				Topic  *string `json:"topic"`
			}
			json.Unmarshal([]byte(l), &line)
			got := ""
			if line.Topic != nil {
				got = *line.Topic
			}
			if got != tc.topics[i] || line.Stream == "" || (line.Topic != nil && *line.Topic == "") {
				t.Errorf("%v line %d: stream %q topic %q, want topic %q", tc.args, i, line.Stream, got, tc.topics[i])
			}
		}
	}
}
