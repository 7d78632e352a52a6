package schema

import (
	"bytes"
	_ "embed"
	"regexp"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// gs1EPCIS is GS1's EPCIS 2.0 JSON Schema, vendored unchanged with its
// licence (gs1/NOTICE). It is self-contained (draft-07, every $ref
// local), so it compiles offline.
//
//go:embed gs1/EPCIS-JSON-Schema.json
var gs1EPCIS []byte

var epcisSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	const name = "gs1/EPCIS-JSON-Schema.json"
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(gs1EPCIS))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // "format": "uri" is what holds identifiers to URIs
	c.UseRegexpEngine(regexpEngine)
	if err := c.AddResource(name, doc); err != nil {
		return nil, err
	}
	return c.Compile(name)
})

// CheckEPCIS validates an EPCIS 2.0 document (what the gateway publishes
// on its epcis topics) against GS1's schema.
func CheckEPCIS(doc []byte) error {
	s, err := epcisSchema()
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

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
