// Package schema ships the JSON Schemas of the events scangw publishes, so
// consumers and tests check payloads against the same contract.
package schema

import "embed"

// Files holds every schema, named <type>.json (scan.v1.json, status.v1.json).
//
//go:embed *.json
var Files embed.FS
