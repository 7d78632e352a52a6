//go:build !bench

package main

import (
	"context"
	"io"
)

// benchPipeline is built in only with the bench tag (make bench-tool).
func benchPipeline(context.Context, io.Writer, []string) error {
	return errNotBuilt("pipeline bench", "bench")
}
