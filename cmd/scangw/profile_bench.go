//go:build bench

package main

// The daemon's CPU profile for scangw bench pipeline. Only builds with the
// bench tag have it: the daemon a site runs has no such hook.

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

const (
	// cpuProfileEnv names the file a bench build of the daemon writes its
	// CPU profile to: SIGUSR1 starts the profile, the next SIGUSR1 stops
	// and writes it, so that it covers the bench's window and no more.
	cpuProfileEnv = "SCANGW_BENCH_CPUPROFILE"
	// armedSuffix marks, beside the profile's path, a daemon that has the
	// hook: without it SIGUSR1 would end the process.
	armedSuffix = ".armed"
)

func init() {
	path := os.Getenv(cpuProfileEnv)
	if path == "" {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	if err := os.WriteFile(path+armedSuffix, nil, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", cpuProfileEnv, err)
		signal.Stop(sig)
		return
	}
	// Lives as long as the process: it outlasts anything run() owns.
	go func() {
		if err := profileOnSignal(path, sig); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", cpuProfileEnv, err)
		}
	}()
}

// profileOnSignal profiles between each two signals on sig, writing each
// profile to path whole (through a temporary file renamed into place, so
// that the bench never reads half of one). It returns when sig is closed.
func profileOnSignal(path string, sig <-chan os.Signal) error {
	for range sig {
		f, err := os.Create(path + ".tmp")
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		_, ok := <-sig
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
		if !ok {
			return nil
		}
	}
	return nil
}
