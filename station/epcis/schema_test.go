package epcis

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// gs1Schema is GS1's EPCIS 2.0 JSON Schema, vendored unchanged in
// testdata (see testdata/NOTICE). It is self-contained (draft-07, every
// $ref local), so it compiles offline.
var gs1Schema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	const path = "testdata/EPCIS-JSON-Schema.json"
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // "format": "uri" is what holds identifiers to URIs
	c.UseRegexpEngine(regexpEngine)
	if err := c.AddResource(path, doc); err != nil {
		return nil, err
	}
	return c.Compile(path)
})

// regexpEngine is Go's regexp plus the one construct of GS1's schema that
// RE2 lacks: a pattern that is a single negative lookahead at the start,
// "^(?!(X))", which the schema uses to keep the CBV's own namespaces out
// of user vocabulary URIs. It matches when the value does not start with
// X.
func regexpEngine(s string) (jsonschema.Regexp, error) {
	if inner, ok := strings.CutPrefix(s, "^(?!"); ok && strings.HasSuffix(inner, ")") {
		re, err := regexp.Compile("^" + strings.TrimSuffix(inner, ")"))
		if err != nil {
			return nil, err
		}
		return notPrefix{s, re}, nil
	}
	return regexp.Compile(s)
}

type notPrefix struct {
	src string
	re  *regexp.Regexp
}

func (n notPrefix) MatchString(v string) bool { return !n.re.MatchString(v) }
func (n notPrefix) String() string            { return n.src }

// checkGS1 fails the test unless doc is valid for GS1's schema.
func checkGS1(t testing.TB, doc []byte) {
	t.Helper()
	if err := validGS1(doc); err != nil {
		t.Fatalf("not a valid EPCIS 2.0 document: %v\n%s", err, doc)
	}
}

func validGS1(doc []byte) error {
	s, err := gs1Schema()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

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
