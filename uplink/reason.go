package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// errTimedOut is a wait for a paho token that ran past its bound.
var errTimedOut = errors.New("timed out")

// connectError is a failed connection attempt: a bounded reason for the
// metric, and a hint that tells the operator what it most likely means.
type connectError struct {
	reason string
	hint   string
	err    error
}

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// classifyConnect finds why a connection attempt failed. st says how far
// the TLS layer got (nil for plain TCP).
func classifyConnect(err error, st *dialState) *connectError {
	ce := &connectError{err: err}
	ce.reason, ce.hint = connectReason(err, st)
	return ce
}

func connectReason(err error, st *dialState) (reason, hint string) {
	var local *localError
	if errors.As(err, &local) {
		if local.reason == ReasonTLSExpired {
			return local.reason, "renew the client certificate, or set the clock; not dialling with a certificate the broker must refuse"
		}
		return local.reason, "a local file named in the config cannot be used"
	}
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return ReasonBadCredentials, "the broker refused mqtt.username and the password (CONNACK 4)"
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return ReasonBadCredentials, "the broker refused the gateway as not authorised (CONNACK 5): a wrong user name or password, or an identity it does not accept"
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return ReasonRefused, "the broker rejected the client id (CONNACK 2)"
	case errors.Is(err, packets.ErrorRefusedBadProtocolVersion):
		return ReasonRefused, "the broker does not speak MQTT 3.1.1 (CONNACK 1)"
	case errors.Is(err, packets.ErrorRefusedServerUnavailable):
		return ReasonRefused, "the broker is unavailable (CONNACK 3)"
	}

	// The gateway refused the broker's certificate.
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostname x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return ReasonTLSUnknownCA, "the broker's certificate is not signed by a CA in mqtt.tls.ca_file"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ReasonTLSExpired, "the broker's certificate is expired or not yet valid (or the gateway's clock is wrong)"
	case errors.As(err, &invalid):
		return ReasonTLSBadCertificate, "the broker's certificate is not valid for a TLS server"
	case errors.As(err, &hostname):
		return ReasonTLSBadCertificate, "the broker's certificate is not for the host in mqtt.broker; set mqtt.tls.server_name if the broker is known by another name"
	}

	// The broker refused the gateway's certificate: a TLS alert, during
	// the handshake under TLS 1.2, on the first read after it under 1.3.
	if a, ok := remoteAlert(err); ok {
		switch a {
		case tls.AlertError(45): // certificate_expired
			return ReasonTLSExpired, "the broker says the gateway's client certificate expired (or the broker's clock is wrong)"
		case tls.AlertError(116): // certificate_required
			return ReasonTLSBadCertificate, "the broker requires a client certificate: set mqtt.tls.cert_file and mqtt.tls.key_file"
		case tls.AlertError(42), tls.AlertError(43), tls.AlertError(44), tls.AlertError(46), tls.AlertError(48), tls.AlertError(49):
			// bad, unsupported, revoked, unknown certificate; unknown CA;
			// access denied
			return ReasonTLSBadCertificate, fmt.Sprintf("the broker refused the gateway's client certificate (%v)", a)
		}
		return ReasonTLSHandshake, fmt.Sprintf("the broker ended the TLS session (%v)", a)
	}

	if isTimeout(err) {
		return ReasonTimeout, "no answer within mqtt.connect_timeout"
	}
	var hs *handshakeError
	if errors.As(err, &hs) {
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) {
			return ReasonTLSHandshake, "the broker's port does not speak TLS (a tcp:// listener behind an ssl:// URL?)"
		}
		if isClosed(err) {
			return ReasonTLSHandshake, "the broker closed the connection during the TLS handshake"
		}
		return ReasonTLSHandshake, "the TLS handshake failed"
	}
	if st != nil && st.handshakeDone.Load() && isClosed(err) {
		if st.version.Load() == tls.VersionTLS13 && st.sentCert.Load() {
			// Under TLS 1.3 the client's handshake ends before the broker
			// has checked the client certificate; a broker that refuses
			// it and closes without an alert the gateway could read looks
			// exactly like this.
			return ReasonTLSBadCertificate, "the broker closed the connection right after the TLS 1.3 handshake, before CONNACK: it most likely refused the gateway's client certificate (see the broker's log)"
		}
		return ReasonNetwork, "the broker closed the connection after the TLS handshake, before CONNACK"
	}
	return ReasonNetwork, "the broker cannot be reached or closed the connection"
}

// remoteAlert returns the TLS alert the peer sent, if err holds one.
// crypto/tls reports it as a *net.OpError with Op "remote error" around an
// unexported alert type whose text matches tls.AlertError's. (An
// AlertError wrapped in an error is an alert this side sent, which says
// nothing about the peer.) The whole error tree is searched: alertConn
// joins an alert with the write error it explains.
func remoteAlert(err error) (alert tls.AlertError, found bool) {
	walkErrors(err, func(e error) bool {
		op, ok := e.(*net.OpError)
		if !ok || op.Op != "remote error" || op.Err == nil {
			return false
		}
		text := op.Err.Error()
		for code := range 256 {
			if a := tls.AlertError(code); a.Error() == text {
				alert, found = a, true
				return true
			}
		}
		return false
	})
	return alert, found
}

// walkErrors calls f on err and everything it wraps, depth first, until f
// returns true.
func walkErrors(err error, f func(error) bool) bool {
	if err == nil {
		return false
	}
	if f(err) {
		return true
	}
	switch x := err.(type) {
	case interface{ Unwrap() error }:
		return walkErrors(x.Unwrap(), f)
	case interface{ Unwrap() []error }:
		for _, e := range x.Unwrap() {
			if walkErrors(e, f) {
				return true
			}
		}
	}
	return false
}

func isTimeout(err error) bool {
	if errors.Is(err, errTimedOut) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// lostReason classifies what paho's connection-lost handler reported.
func lostReason(err error) string {
	// paho has no sentinel for it; the text is in ping.go.
	if err != nil && strings.Contains(err.Error(), "pingresp not received") {
		return LostKeepalive
	}
	return LostNetwork
}
