//go:build !demo && !bench

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestToolsNotBuilt: the daemon a site runs has neither the demo nor the
// bench, and says how to get them rather than failing obscurely.
func TestToolsNotBuilt(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	for name, err := range map[string]error{
		"demo":  demo(ctx, &out, 1, t.TempDir()),
		"bench": benchBuffer(ctx, &out, nil),
	} {
		if err == nil || !strings.Contains(err.Error(), "-tags "+name) {
			t.Errorf("%s in a build without it: %v, want a pointer to -tags %s", name, err, name)
		}
	}
	if out.Len() != 0 {
		t.Errorf("wrote %q", out.String())
	}
}
