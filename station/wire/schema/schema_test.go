package schema

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	good := `{"specversion":"1.0","id":"01938f4e-6a7b-7c8d-9e0f-0123456789ab","source":"scangw://s/g/st","type":"io.scangw.scan.v1","time":"2026-11-27T06:00:00.123Z","datacontenttype":"application/json","data":{"seq":1,"epoch":"e","station":"st","mode":"receive","scanner":"h","symbology":"]C1","raw":"x","verdict":"accepted","reasons":[],"rules_version":"","clock_synced":false}}`
	if err := Check([]byte(good)); err != nil {
		t.Fatalf("good event refused: %v", err)
	}
	for _, tc := range []struct{ name, from, to string }{
		{"seq as string", `"seq":1`, `"seq":"1"`},
		{"seq zero", `"seq":1`, `"seq":0`},
		{"bad verdict", `"accepted"`, `"fine"`},
		{"bad mode", `"receive"`, `"stock"`},
		{"local time", `.123Z"`, `.123+01:00"`},
		{"missing raw", `"raw":"x",`, ``},
		{"bad source", `scangw://s/g/st`, `scangw://s/g`},
		{"unknown type", `io.scangw.scan.v1`, `io.scangw.scan.v9`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, tc.from, tc.to, 1)
			if bad == good {
				t.Fatal("replacement did not apply")
			}
			if err := Check([]byte(bad)); err == nil {
				t.Fatalf("accepted %s", bad)
			}
		})
	}
}
