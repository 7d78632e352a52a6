package zpltest

import (
	"bufio"
	"net"
	"slices"
	"testing"

	"github.com/scangw/scangw/device/zpl"
)

func dial(t *testing.T, p *Printer) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Jobs are cut at ^XA … ^XZ however the bytes arrive, several to a
// connection, with ~HS answered between them; a format cut off by its
// connection's end is no job and never joins another connection's.
func TestSplitting(t *testing.T) {
	p := Start(t)
	p.SetState(zpl.Status{PaperOut: true})
	a := dial(t, p)
	stream := "\r\n^XA^FDone^FS^XZ\r\n~HS^XA^FDtwo^FS^XZ^XA^FDcut"
	for i := range len(stream) {
		if _, err := a.Write([]byte{stream[i]}); err != nil {
			t.Fatal(err)
		}
	}
	reply, err := bufio.NewReader(a).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := HostStatus(zpl.Status{PaperOut: true}); string(reply) != string(want[:len(reply)]) {
		t.Fatalf("~HS reply %q, want %q", reply, want)
	}
	if _, err := p.WaitJobs(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := dial(t, p)
	if _, err := b.Write([]byte("^FS^XZ^XA^FDthree^FS^XZ")); err != nil {
		t.Fatal(err)
	}
	jobs, err := p.WaitJobs(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		got = append(got, string(j))
	}
	want := []string{"^XA^FDone^FS^XZ", "^XA^FDtwo^FS^XZ", "^XA^FDthree^FS^XZ"}
	if !slices.Equal(got, want) {
		t.Fatalf("jobs = %q, want %q", got, want)
	}
}
