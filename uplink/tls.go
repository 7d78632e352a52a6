package uplink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// TLS names the files used for ssl:// and mqtts:// brokers. They are read
// again at every connection attempt, so a certificate renewed on disk is
// used from the next reconnect on without a restart.
type TLS struct {
	// CAFile is a PEM bundle of the CAs the broker's certificate must chain
	// to; empty means the system roots.
	CAFile string
	// CertFile and KeyFile are the gateway's client certificate and key
	// (PEM) for mutual TLS; both or neither.
	CertFile, KeyFile string
	// ServerName overrides the broker URL's host as the name the broker's
	// certificate must carry. The check itself is never turned off.
	ServerName string
}

// SetupError reports a local file or setting the uplink cannot use. Setting
// is the key under mqtt: in the config ("tls.ca_file", "password_file"), so
// that the caller can name the field.
type SetupError struct {
	Setting string
	Err     error
}

// Error returns "<setting>: <cause>".
func (e *SetupError) Error() string { return e.Setting + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *SetupError) Unwrap() error { return e.Err }

// isTLS reports whether broker is a URL paho dials with TLS.
func isTLS(broker string) bool {
	u, err := url.Parse(broker)
	return err == nil && (u.Scheme == "ssl" || u.Scheme == "mqtts")
}

// CheckLocal checks, before any connection, what the uplink will need from
// the local system: that the CA bundle reads and holds certificates, that
// the client certificate and key load and belong together, and that the
// password file reads or the password variable is set. It returns every
// problem, each a *SetupError, joined. Validity dates are not judged here:
// a Pi without a real-time clock may boot with a clock years off, and an
// expired certificate must not stop the stations (they keep buffering);
// each connection attempt checks the dates and says so (reason
// tls_expired) instead.
func CheckLocal(cfg Config) error {
	var errs []error
	if cfg.TLS.CAFile != "" {
		if _, err := loadCAs(cfg.TLS.CAFile); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.TLS.CertFile != "" || cfg.TLS.KeyFile != "" {
		if _, _, err := loadClientCert(cfg.TLS); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := cfg.password(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, &SetupError{"tls.ca_file", err}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &SetupError{"tls.ca_file", fmt.Errorf("%s holds no PEM certificate", path)}
	}
	return pool, nil
}

// loadClientCert loads the key pair and parses its leaf.
func loadClientCert(t TLS) (tls.Certificate, *x509.Certificate, error) {
	switch {
	case t.CertFile == "":
		return tls.Certificate{}, nil, &SetupError{"tls.cert_file", errors.New("required with tls.key_file")}
	case t.KeyFile == "":
		return tls.Certificate{}, nil, &SetupError{"tls.key_file", errors.New("required with tls.cert_file")}
	}
	// Read each file first, so an unreadable one is named by its own key.
	if _, err := os.ReadFile(t.CertFile); err != nil {
		return tls.Certificate{}, nil, &SetupError{"tls.cert_file", err}
	}
	if _, err := os.ReadFile(t.KeyFile); err != nil {
		return tls.Certificate{}, nil, &SetupError{"tls.key_file", err}
	}
	// LoadX509KeyPair also proves that the key belongs to the certificate.
	pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		setting := "tls.cert_file"
		if msg := err.Error(); strings.Contains(msg, "private key") || strings.Contains(msg, "key input") {
			setting = "tls.key_file"
		}
		return tls.Certificate{}, nil, &SetupError{setting, fmt.Errorf("%s and %s: %w", t.CertFile, t.KeyFile, err)}
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return tls.Certificate{}, nil, &SetupError{"tls.cert_file", err}
		}
	}
	return pair, leaf, nil
}

// password returns the password from whichever source is configured.
func (c Config) password() (string, error) {
	switch {
	case c.PasswordFile != "":
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return "", &SetupError{"password_file", err}
		}
		// A file written by `echo` ends in a newline that is not part of
		// the password.
		return strings.TrimRight(string(b), "\r\n"), nil
	case c.PasswordEnv != "":
		p, ok := os.LookupEnv(c.PasswordEnv)
		if !ok || p == "" {
			return "", &SetupError{"password_env", fmt.Errorf("environment variable %s is not set", c.PasswordEnv)}
		}
		return p, nil
	}
	return c.Password, nil
}

// localError is a connection attempt refused by the gateway itself before
// dialling: what it would send is known to fail.
type localError struct {
	reason string
	err    error
}

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// dialState records, for one connection attempt, what the TLS layer did,
// so that a failure after the handshake can be explained.
type dialState struct {
	handshakeDone atomic.Bool
	version       atomic.Uint32 // negotiated TLS version
	sentCert      atomic.Bool   // the broker asked for and got a client certificate
}

// handshakeError marks an error of the TLS handshake itself.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return "tls handshake: " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// tlsConfig builds the TLS config for one connection attempt, checking the
// client certificate's dates against now.
func (u *Uplink) tlsConfig(st *dialState, broker string, now time.Time) (*tls.Config, error) {
	t := u.cfg.TLS
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if cfg.ServerName == "" {
		b, err := url.Parse(broker)
		if err != nil {
			return nil, &localError{ReasonLocal, fmt.Errorf("broker %q: %w", redacted(broker), err)}
		}
		cfg.ServerName = b.Hostname()
	}
	if t.CAFile != "" {
		pool, err := loadCAs(t.CAFile)
		if err != nil {
			return nil, &localError{ReasonLocal, err}
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		pair, leaf, err := loadClientCert(t)
		if err != nil {
			return nil, &localError{ReasonLocal, err}
		}
		// A certificate the broker must refuse is not worth a handshake:
		// say why here, where the dates are known.
		switch {
		case now.After(leaf.NotAfter):
			return nil, &localError{ReasonTLSExpired, fmt.Errorf("client certificate %s (tls.cert_file) expired at %s; the clock says %s",
				t.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
		case now.Before(leaf.NotBefore):
			return nil, &localError{ReasonTLSExpired, fmt.Errorf("client certificate %s (tls.cert_file) is not valid before %s; the clock says %s (is it set?)",
				t.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))}
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			st.sentCert.Store(true)
			return &pair, nil
		}
	}
	return cfg, nil
}

// dialTLS opens the TCP connection and completes the TLS handshake within
// the connect timeout, recording what happened in st.
func (u *Uplink) dialTLS(st *dialState, cfg *tls.Config, host string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), u.cfg.ConnectTimeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, &handshakeError{err}
	}
	st.version.Store(uint32(conn.ConnectionState().Version))
	st.handshakeDone.Store(true)
	return newBatchConn(&alertConn{Conn: conn}, u.cfg.WriteTimeout), nil
}

// alertConn keeps a TLS 1.3 broker's verdict on the client certificate
// from getting lost. Under TLS 1.3 the broker judges the certificate after
// the client's handshake is done, sends an alert and closes; CONNECT,
// written meanwhile, then often fails with "connection reset", and paho
// never reads the alert that is waiting in the socket. So when a write
// fails before anything was read (only CONNECT and CONNACK happen then,
// one after the other, so no reader runs concurrently), it reads once to
// fetch the alert and reports it in front of the write error.
type alertConn struct {
	*tls.Conn
	read atomic.Bool
}

func (c *alertConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.read.Store(true)
	}
	return n, err
}

func (c *alertConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil || c.read.Load() || !isClosed(err) {
		return n, err
	}
	c.Conn.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	if _, rerr := c.Conn.Read(b[:]); rerr != nil {
		if _, ok := remoteAlert(rerr); ok {
			return n, fmt.Errorf("%w (and then: %w)", rerr, err)
		}
	}
	return n, err
}
