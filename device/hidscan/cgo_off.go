//go:build !cgo

package hidscan

// cgoEnabled tells Available whether karalabe/hid's real implementation
// could have been compiled in.
const cgoEnabled = false
