// Package schema ships the JSON Schemas of the events scangw publishes (the
// wire contract of DESIGN.md), so that consumers and tests check payloads
// against the same documents. Check picks the schema by the event's
// CloudEvents type: io.scangw.scan.v1 is checked against scan.v1.json.
package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
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
