package epcis

import (
	"strings"
	"testing"

	"github.com/scangw/scangw/station/wire/schema"
)

// checkGS1 fails the test unless doc is valid for GS1's schema.
func checkGS1(t testing.TB, doc []byte) {
	t.Helper()
	if err := validGS1(doc); err != nil {
		t.Fatalf("not a valid EPCIS 2.0 document: %v\n%s", err, doc)
	}
}

func validGS1(doc []byte) error { return schema.CheckEPCIS(doc) }

// The validator must be able to say no, and the lookahead must work: a
// schema that passes everything would make every other test vacuous.
func TestSchemaRejects(t *testing.T) {
	good := `{"@context":["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2024-01-01T00:00:00Z","epcisBody":{"eventList":[{"type":"ObjectEvent","eventTime":"2024-01-01T00:00:00Z","eventTimeZoneOffset":"+00:00","action":"OBSERVE","epcList":["https://id.gs1.org/01/09506000134352/21/A1"],"bizStep":"receiving"}]}}`
	if err := validGS1([]byte(good)); err != nil {
		t.Fatalf("the reference document is refused: %v", err)
	}
	for _, tc := range []struct{ name, old, new string }{
		{"CBV URN as bizStep", `"receiving"`, `"urn:epcglobal:cbv:bizstep:receiving"`},
		{"unknown bizStep", `"receiving"`, `"recieving"`},
		{"bad offset", `"+00:00"`, `"+1:00"`},
		{"bad action", `"OBSERVE"`, `"LOOK"`},
		{"EPC not a URI", `"https://id.gs1.org/01/09506000134352/21/A1"`, `"09506000134352 A1"`},
		{"unknown field", `"bizStep"`, `"seq":1,"bizStep"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(good, tc.old, tc.new, 1)
			if validGS1([]byte(doc)) == nil {
				t.Errorf("accepted:\n%s", doc)
			}
		})
	}
}
