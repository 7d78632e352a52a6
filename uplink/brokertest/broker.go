// Package brokertest runs real MQTT brokers other than Mosquitto for
// tests, behind one interface that Mosquitto's harness satisfies too.
//
// Integration tests talk to real brokers (house style rule 9), and a site
// may run any of several: the gateway's wire contract is only proven on a
// broker once a test has run it there. [StartNATSCluster] runs nats-server
// nodes with JetStream and their MQTT listeners as one cluster, the MQTT
// streams replicated on every node; [StartRabbitMQ] runs a RabbitMQ node
// with its MQTT plugin. Each runs as child processes on free loopback
// ports, with every file (config, data, logs, cookies) in the test's temp
// dir, from the binaries of Debian's packages; a missing binary fails the
// test, it is never skipped. mosquittotest.Start's broker is the third
// [Broker].
//
// [Subscribe] attaches a paho client to any of them the way TESTING.md
// asks a delivery check to: a fixed client id, clean session off, QoS 1,
// reconnecting by itself, so its broker-side session outlives restarts.
//
// What differs between brokers is asserted by cmd/scangw's
// TestBrokerContract, one subtest each: NATS 2.9 closes the connection of
// a client that publishes to a topic holding a '.' or publishes at QoS 2;
// RabbitMQ 3.10 delivers a '.' in a topic as a '/', answers a QoS 2
// PUBLISH with a PUBACK and sends retained messages only to subscriptions
// without wildcards; neither has $share/ shared subscriptions.
package brokertest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/scangw/scangw/uplink/mosquittotest"
)

// Broker is an MQTT broker run for one test: what a test needs to point
// clients at it and to take it down and up again. Its methods report
// failures to the test that started it.
type Broker interface {
	// URL is the address of its MQTT listener, tcp://127.0.0.1:port,
	// the same across Restart.
	URL() string
	// Stop stops it cleanly and waits until it has exited: what it
	// acknowledged and stores durably is saved.
	Stop()
	// Restart starts it again on the same ports and data, stopping it
	// first if it runs, and returns once it serves MQTT again.
	Restart()
	// Kill kills it with SIGKILL, as after a power cut.
	Kill()
	// Log is what it logged across all its runs, for failure messages.
	Log() string
}

// Message is one message a Subscriber received; it is mosquittotest's,
// so that checks written for Mosquitto's subscriber take these too.
type Message = mosquittotest.Message

// Mosquitto's harness is one of the brokers.
var _ Broker = (*mosquittotest.Broker)(nil)

var errAddrInUse = errors.New("address already in use")

const (
	// startAttempts bounds how often a broker is started on new ports
	// when another process took one between our probe and its bind.
	startAttempts = 5
	// restartBindTimeout bounds how long a restart waits for its ports to
	// free up: unlike a start it cannot move, clients know these ones.
	restartBindTimeout = 15 * time.Second
	pollInterval       = 20 * time.Millisecond
)

// freePort asks the kernel for a free loopback port. The brokers take
// their ports from their configs, so the port is picked here and may be
// taken again before the broker binds it; starts retry when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts picks n distinct free ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	seen := map[int]bool{}
	for len(ports) < n {
		p, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// findBinary resolves name like the shell does, then in dirs (where
// Debian installs a server outside a normal user's PATH).
func findBinary(name, pkg string, dirs ...string) (string, error) {
	for _, dir := range dirs {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (%v): `make deps` installs the Debian package %s", name, err, pkg)
	}
	return p, nil
}

// process is one run of a broker's binary, in a process group of its own
// so that a kill reaches the helpers it forks (Erlang has several).
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait returns
	err  error         // cmd.Wait's result, valid after done is closed
}

// launch runs cmd with its output appended to outPath.
func launch(cmd *exec.Cmd, outPath string) (*process, error) {
	out, err := os.OpenFile(outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a broker that outlived a crashed test binary would hold
	// its ports and data; Setpgid: see process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	out.Close() // the child holds its own copy
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	// Tracked through p.done; every path that drops the process waits on it.
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process's group.
func (p *process) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// kill kills the group with SIGKILL and waits for the process.
func (p *process) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// wait waits up to timeout for the process to exit.
func (p *process) wait(timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
		return false
	}
}

// readFile returns a file's contents, or a note saying why there are none.
func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// fileFrom returns the file's contents from offset on, or "".
func fileFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	return string(b[offset:])
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// indent prepares a log for a failure message.
func indent(s string) string {
	return "\t" + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t")
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// portOpen reports whether something accepts TCP connections on the
// loopback port.
func portOpen(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
