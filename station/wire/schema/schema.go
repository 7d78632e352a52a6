// Package schema ships the JSON Schemas of the events of the wire contract
// (package wire), so that consumers and tests check payloads against the
// same documents. Check picks the schema by the event's CloudEvents type:
// io.scangw.scan.v1 is checked against scan.v1.json. CheckMessage also
// holds the topic to the contract's table.
//
// Only tests and tools import it: it carries a JSON Schema validator the
// daemon does not need.
package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/scangw/scangw/station/wire"
)

// Files holds every schema, named <event>.v<N>.json.
//
//go:embed *.json
var Files embed.FS

var (
	once     sync.Once
	compiled map[string]*jsonschema.Schema
	errLoad  error
)

func load() {
	compiled = map[string]*jsonschema.Schema{}
	entries, err := Files.ReadDir(".")
	if err != nil {
		errLoad = err
		return
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, e := range entries {
		data, err := Files.ReadFile(e.Name())
		if err != nil {
			errLoad = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			errLoad = fmt.Errorf("%s: %w", e.Name(), err)
			return
		}
		if err := c.AddResource(e.Name(), doc); err != nil {
			errLoad = err
			return
		}
	}
	for _, e := range entries {
		s, err := c.Compile(e.Name())
		if err != nil {
			errLoad = fmt.Errorf("compile %s: %w", e.Name(), err)
			return
		}
		// io.scangw.scan.v1 -> scan.v1.json
		typ := "io.scangw." + strings.TrimSuffix(e.Name(), ".json")
		compiled[typ] = s
	}
}

// Check validates one event payload against the schema of its type.
func Check(payload []byte) error {
	once.Do(load)
	if errLoad != nil {
		return errLoad
	}
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	s, ok := compiled[head.Type]
	if !ok {
		return fmt.Errorf("no schema for event type %q", head.Type)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return err
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("%s: %w", head.Type, err)
	}
	return nil
}

// epcisPattern is the route of EPCIS documents: not CloudEvents, checked
// against GS1's schema instead.
var epcisPattern = wire.Routes[slices.IndexFunc(wire.Routes, func(r wire.Route) bool {
	return r.Up && len(r.Types) == 0
})].Pattern

// CheckMessage validates a message the gateway published on topic: the
// topic must be one of the contract's upward topics (wire.Routes), the
// event's type one that topic carries, and the payload valid for its
// schema.
func CheckMessage(t wire.Topics, topic string, payload []byte) error {
	r, _, ok := t.Route(topic)
	if !ok || !r.Up {
		return fmt.Errorf("topic %q is not an upward topic of the wire contract", topic)
	}
	if r.Pattern == epcisPattern {
		if err := CheckEPCIS(payload); err != nil {
			return fmt.Errorf("%s: %w", topic, err)
		}
		return nil
	}
	var head wire.Head
	if err := json.Unmarshal(payload, &head); err != nil {
		return fmt.Errorf("%s: not JSON: %w", topic, err)
	}
	if !slices.Contains(r.Types, head.Type) {
		return fmt.Errorf("%s carries %v, not %q", r.Pattern, r.Types, head.Type)
	}
	return Check(payload)
}
