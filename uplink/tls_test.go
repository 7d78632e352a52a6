package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/uplink/mosquittotest"
)

// testPKI is a throwaway PKI made in the test: a CA with a server
// certificate for 127.0.0.1 and localhost and client certificates, and a
// second, unrelated CA.
type testPKI struct {
	dir string

	caFile, serverCert, serverKey string
	clientCert, clientKey         string
	expiredCert, expiredKey       string // signed by the good CA, expired yesterday
	futureCert, futureKey         string // signed by the good CA, valid from tomorrow

	wrongCAFile                     string
	wrongClientCert, wrongClientKey string // signed by the wrong CA
}

type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial atomic.Int64

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCA(t testing.TB, name string) certAuthority {
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return certAuthority{cert, key}
}

// issue signs a leaf certificate and writes it and its key as PEM files
// named base.pem and base.key in dir.
func (ca certAuthority) issue(t testing.TB, dir, base, cn string, usage x509.ExtKeyUsage, from, until time.Time) (certFile, keyFile string) {
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    from,
		NotAfter:     until,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, base+".pem"), filepath.Join(dir, base+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	// 0644: Mosquitto reads the files too.
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca, wrong := newCA(t, "scangw test CA"), newCA(t, "someone else's CA")
	p := &testPKI{dir: dir, caFile: filepath.Join(dir, "ca.pem"), wrongCAFile: filepath.Join(dir, "wrong-ca.pem")}
	writePEM(t, p.caFile, "CERTIFICATE", ca.cert.Raw)
	writePEM(t, p.wrongCAFile, "CERTIFICATE", wrong.cert.Raw)
	p.serverCert, p.serverKey = ca.issue(t, dir, "server", "broker", x509.ExtKeyUsageServerAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	p.clientCert, p.clientKey = ca.issue(t, dir, "client", "gw1", x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	p.expiredCert, p.expiredKey = ca.issue(t, dir, "expired", "gw1", x509.ExtKeyUsageClientAuth, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	p.futureCert, p.futureKey = ca.issue(t, dir, "future", "gw1", x509.ExtKeyUsageClientAuth, now.Add(24*time.Hour), now.Add(48*time.Hour))
	p.wrongClientCert, p.wrongClientKey = wrong.issue(t, dir, "wrong-client", "gw1", x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	return p
}

// listener is the Mosquitto config of a mutual-TLS listener.
func (p *testPKI) listener(extra string) string {
	return fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n%s", p.caFile, p.serverCert, p.serverKey, extra)
}

// TestTLS runs the gateway against a real Mosquitto with mutual TLS (one
// listener negotiating TLS 1.3, one held to TLS 1.2). A good setup
// delivers; every bad one fails each attempt with the right reason in the
// metric and the log, and keeps retrying with backoff.
func TestTLS(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	br := mosquittotest.Start(t, mosquittotest.Options{Listeners: []string{
		pki.listener(""),
		pki.listener("tls_version tlsv1.2\n"),
	}})
	tls13, tls12 := "ssl://"+br.ListenerAddr(0), "mqtts://"+br.ListenerAddr(1)

	good := TLS{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}
	t.Run("good mTLS", func(t *testing.T) {
		t.Parallel()
		for i, broker := range []string{tls13, tls12} {
			buf := newMemQueue()
			cfg := testConfig(broker, buf)
			cfg.TLS = good
			if err := CheckLocal(cfg); err != nil {
				t.Fatalf("CheckLocal: %v", err)
			}
			sub := mosquittotest.Subscribe(t, br, fmt.Sprintf("sub-tls-%d", i), scanFilter)
			mustAppend(t, buf, 10)
			u, reg, stop := runUplink(t, cfg, buf)
			var got arrivals
			got.waitAll(t, sub, 10, deliveryTimeout)
			got.check(t, 10)
			drained(t, buf, 10*time.Second)
			if !u.Connected() || metricValue(t, reg, "scangw_mqtt_connect_failures_total") != 0 {
				t.Errorf("%s: connected %v, %v connect failures; want connected without failures", broker,
					u.Connected(), metricValue(t, reg, "scangw_mqtt_connect_failures_total"))
			}
			stop()
		}
	})

	for _, tc := range []struct {
		name   string
		broker string
		tls    TLS
		reason string
		log    string // in the log line that reports the failure
	}{
		{"wrong CA", tls13, TLS{CAFile: pki.wrongCAFile, CertFile: pki.clientCert, KeyFile: pki.clientKey},
			ReasonTLSUnknownCA, "not signed by a CA in mqtt.tls.ca_file"},
		{"client cert of another CA, TLS 1.3", tls13, TLS{CAFile: pki.caFile, CertFile: pki.wrongClientCert, KeyFile: pki.wrongClientKey},
			ReasonTLSBadCertificate, "refused the gateway's client certificate"},
		{"client cert of another CA, TLS 1.2", tls12, TLS{CAFile: pki.caFile, CertFile: pki.wrongClientCert, KeyFile: pki.wrongClientKey},
			ReasonTLSBadCertificate, "refused the gateway's client certificate"},
		{"no client cert", tls13, TLS{CAFile: pki.caFile},
			ReasonTLSBadCertificate, "client certificate"},
		{"wrong server name", tls13, TLS{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey, ServerName: "broker.example"},
			ReasonTLSBadCertificate, "mqtt.tls.server_name"},
		{"plain port behind ssl://", "ssl://" + br.Addr(), good,
			ReasonTLSHandshake, "TLS handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log, logs := captureLogger(t)
			buf := newMemQueue()
			cfg := testConfig(tc.broker, buf)
			cfg.TLS = tc.tls
			u, reg, _ := runUplinkLog(t, cfg, buf, log)
			waitFailures(t, reg, tc.reason, 2)
			checkFailures(t, u, reg, logs, tc.reason, tc.log)
		})
	}

	// An expired (or not yet valid) client certificate is refused before
	// dialling: a listener that counts connections never sees one.
	for _, tc := range []struct {
		name, cert, key, log string
	}{
		{"expired client cert", pki.expiredCert, pki.expiredKey, "expired at"},
		{"client cert not yet valid", pki.futureCert, pki.futureKey, "is not valid before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var accepted atomic.Int32
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted.Add(1)
					c.Close()
				}
			}()
			t.Cleanup(func() { ln.Close() })

			log, logs := captureLogger(t)
			buf := newMemQueue()
			cfg := testConfig("ssl://"+ln.Addr().String(), buf)
			cfg.TLS = TLS{CAFile: pki.caFile, CertFile: tc.cert, KeyFile: tc.key}
			// Dates are for the connection attempts, not for startup: a Pi
			// with a wrong clock must still run its stations.
			if err := CheckLocal(cfg); err != nil {
				t.Errorf("CheckLocal refused a well-formed certificate over its dates: %v", err)
			}
			u, reg, _ := runUplinkLog(t, cfg, buf, log)
			waitFailures(t, reg, ReasonTLSExpired, 3)
			checkFailures(t, u, reg, logs, ReasonTLSExpired, tc.log)
			if n := accepted.Load(); n != 0 {
				t.Errorf("%d connections reached the listener; want none with a certificate known to be refused", n)
			}
		})
	}
}

// waitFailures waits until n connection attempts failed with reason.
func waitFailures(t testing.TB, reg prometheus.Gatherer, reason string, n float64) {
	t.Helper()
	waitUntil(t, 20*time.Second, fmt.Sprintf("%v connect failures with reason %s", n, reason), func() bool {
		return metricValue(t, reg, "scangw_mqtt_connect_failures_total", "reason", reason) >= n
	})
}

// checkFailures asserts that every failed attempt had reason and that the
// log says so, with hint text.
func checkFailures(t testing.TB, u *Uplink, reg prometheus.Gatherer, logs *logBuf, reason, hint string) {
	t.Helper()
	if all, r := metricValue(t, reg, "scangw_mqtt_connect_failures_total"), metricValue(t, reg, "scangw_mqtt_connect_failures_total", "reason", reason); all != r {
		t.Errorf("%v connect failures, %v of them with reason %s; want all", all, r, reason)
	}
	if u.Connected() {
		t.Error("connected")
	}
	var line string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "mqtt connect failed") && strings.Contains(l, "level=ERROR") {
			line = l
			break
		}
	}
	if !strings.Contains(line, "reason="+reason) || !strings.Contains(line, hint) {
		t.Errorf("log line %q, want an error with reason=%s and %q", line, reason, hint)
	}
}

// TestCheckLocal names each unusable file by its setting, before any
// connection.
func TestCheckLocal(t *testing.T) {
	t.Parallel()
	pki := newPKI(t)
	garbage := filepath.Join(pki.dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(pki.dir, "missing.pem")
	for _, tc := range []struct {
		name     string
		cfg      Config
		settings []string
	}{
		{"good", Config{TLS: TLS{CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey}}, nil},
		{"missing CA", Config{TLS: TLS{CAFile: missing}}, []string{"tls.ca_file"}},
		{"CA not PEM", Config{TLS: TLS{CAFile: garbage}}, []string{"tls.ca_file"}},
		{"missing cert", Config{TLS: TLS{CertFile: missing, KeyFile: pki.clientKey}}, []string{"tls.cert_file"}},
		{"missing key", Config{TLS: TLS{CertFile: pki.clientCert, KeyFile: missing}}, []string{"tls.key_file"}},
		{"key of another cert", Config{TLS: TLS{CertFile: pki.clientCert, KeyFile: pki.wrongClientKey}}, []string{"tls.key_file"}},
		{"cert not PEM", Config{TLS: TLS{CertFile: garbage, KeyFile: pki.clientKey}}, []string{"tls.cert_file"}},
		{"cert without key", Config{TLS: TLS{CertFile: pki.clientCert}}, []string{"tls.key_file"}},
		{"missing password file", Config{Username: "gw", PasswordFile: missing}, []string{"password_file"}},
		{"unset password variable", Config{Username: "gw", PasswordEnv: "SCANGW_TEST_UNSET_VARIABLE"}, []string{"password_env"}},
		{"several at once", Config{TLS: TLS{CAFile: garbage, CertFile: missing, KeyFile: pki.clientKey}, Username: "gw", PasswordFile: missing},
			[]string{"tls.ca_file", "tls.cert_file", "password_file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLocal(tc.cfg)
			var got []string
			for _, e := range unjoin(err) {
				var se *SetupError
				if !errors.As(e, &se) {
					t.Fatalf("error %v (%T) is not a *SetupError", e, e)
				}
				got = append(got, se.Setting)
			}
			if strings.Join(got, ",") != strings.Join(tc.settings, ",") {
				t.Errorf("CheckLocal = %v; settings %q, want %q", err, got, tc.settings)
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestCredentials runs the gateway against a Mosquitto that requires a
// password: the right one (from a file) connects; a wrong one fails every
// attempt with bad_credentials. Neither password ever shows in the log,
// debug lines included.
func TestCredentials(t *testing.T) {
	t.Parallel()
	const user, password, wrong = "gw1", "s3cret-Pa55word", "wrong-Pa55word"
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "passwd")
	if out, err := exec.Command("mosquitto_passwd", "-b", "-c", passwd, user, password).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	if err := os.Chmod(passwd, 0o644); err != nil {
		t.Fatal(err)
	}
	br := mosquittotest.Start(t, mosquittotest.Options{ExtraConfig: "allow_anonymous false\npassword_file " + passwd + "\n"})

	for _, tc := range []struct {
		name string
		set  func(cfg *Config, dir string)
		ok   bool
	}{
		{"password file", func(cfg *Config, dir string) {
			f := filepath.Join(dir, "password")
			if err := os.WriteFile(f, []byte(password+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.PasswordFile = f
		}, true},
		{"literal password", func(cfg *Config, _ string) { cfg.Password = password }, true},
		{"wrong password", func(cfg *Config, _ string) { cfg.Password = wrong }, false},
		{"wrong password file", func(cfg *Config, dir string) {
			f := filepath.Join(dir, "password")
			if err := os.WriteFile(f, []byte(wrong), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.PasswordFile = f
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log, logs := captureLogger(t)
			buf := newMemQueue()
			cfg := testConfig(br.URL(), buf)
			cfg.ClientID = "gw1-" + strings.ReplaceAll(tc.name, " ", "-")
			cfg.Username = user
			tc.set(&cfg, t.TempDir())
			log.Info("starting", "config", cfg) // Config.LogValue must redact
			u, reg, stop := runUplinkLog(t, cfg, buf, log)
			if tc.ok {
				waitUntil(t, 10*time.Second, "connected", u.Connected)
			} else {
				waitFailures(t, reg, ReasonBadCredentials, 2)
				checkFailures(t, u, reg, logs, ReasonBadCredentials, "CONNACK 5")
			}
			stop()
			for _, secret := range []string{password, wrong} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("the log contains a password:\n%s", logs)
				}
			}
		})
	}
}

// TestPasswordSources reads the password from each source. (t.Setenv
// keeps it out of the parallel tests.)
func TestPasswordSources(t *testing.T) {
	t.Setenv("SCANGW_TEST_MQTT_PASSWORD", "from-env")
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte("from-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Password: "literal"}, "literal"},
		{Config{PasswordFile: file}, "from-file"},
		{Config{PasswordEnv: "SCANGW_TEST_MQTT_PASSWORD"}, "from-env"},
		{Config{}, ""},
	} {
		if got, err := tc.cfg.password(); err != nil || got != tc.want {
			t.Errorf("password() of %+v = %q, %v; want %q", tc.cfg.LogValue(), got, err, tc.want)
		}
	}
	if s := (Config{Password: "hunter2"}).LogValue().String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "redacted") {
		t.Errorf("LogValue = %s, want the password redacted", s)
	}
}
