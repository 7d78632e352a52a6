package uplink

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/scangw/scangw/station/wire"
)

// Label values of scangw_mqtt_connect_failures_total{reason}: why a
// connection attempt failed. The set is closed, so the series are made at
// zero up front and a dashboard can rate() each from the start.
const (
	// ReasonTLSUnknownCA: the broker's certificate does not chain to a CA
	// in mqtt.tls.ca_file (or the system roots).
	ReasonTLSUnknownCA = "tls_unknown_ca"
	// ReasonTLSBadCertificate: a certificate was refused — the broker's
	// (wrong name, wrong usage) or the gateway's own (the broker's alert).
	ReasonTLSBadCertificate = "tls_bad_certificate"
	// ReasonTLSExpired: a certificate is outside its validity period: the
	// gateway's own (checked locally, before dialling) or the broker's.
	ReasonTLSExpired = "tls_expired"
	// ReasonTLSHandshake: any other TLS failure (no common version or
	// cipher, the port does not speak TLS).
	ReasonTLSHandshake = "tls_handshake"
	// ReasonBadCredentials: CONNACK 4 (bad user name or password) or 5
	// (not authorised).
	ReasonBadCredentials = "bad_credentials"
	// ReasonRefused: any other CONNACK refusal (1 protocol version, 2
	// client id rejected, 3 server unavailable).
	ReasonRefused = "refused"
	// ReasonTimeout: no TCP connection, TLS handshake or CONNACK within
	// connect_timeout.
	ReasonTimeout = "timeout"
	// ReasonNetwork: the broker could not be reached (DNS, connection
	// refused, unreachable) or closed the connection during the handshake.
	ReasonNetwork = "network"
	// ReasonLocal: the gateway's own files (CA bundle, certificate, key,
	// password file) could not be used when connecting.
	ReasonLocal = "local"
)

var connectReasons = []string{
	ReasonTLSUnknownCA, ReasonTLSBadCertificate, ReasonTLSExpired, ReasonTLSHandshake,
	ReasonBadCredentials, ReasonRefused, ReasonTimeout, ReasonNetwork, ReasonLocal,
}

// Label values of scangw_mqtt_reconnects_total{reason}: why a session that
// was up ended.
const (
	// LostKeepalive: the broker did not answer a PINGREQ in time (a
	// half-open connection, a frozen broker).
	LostKeepalive = "keepalive"
	// LostNetwork: the connection was closed or reset (broker restart,
	// another client with the same id taking the session over).
	LostNetwork = "network"
	// LostPublish: a publish failed or timed out without the link being
	// reported lost.
	LostPublish = "publish_failed"
	// LostSetup: subscribing or the birth failed right after CONNACK.
	LostSetup = "setup_failed"
	// LostQueue: the buffer could not be read.
	LostQueue = "queue"
)

var lostReasons = []string{LostKeepalive, LostNetwork, LostPublish, LostSetup, LostQueue}

// Commands known to the downlink; anything else is counted as "unknown".
var knownCommands = wire.Commands

type metrics struct {
	connected       prometheus.Gauge
	connectFailures *prometheus.CounterVec
	reconnects      *prometheus.CounterVec
	published       prometheus.Counter
	publishFailures prometheus.Counter
	inflight        prometheus.Gauge
	latency         prometheus.Histogram
	poison          prometheus.Counter
	permitted       prometheus.Gauge
	duplicate       prometheus.Gauge
	broker          *prometheus.GaugeVec
	commands        *prometheus.CounterVec
	downlinkDropped prometheus.Counter
	noticesDropped  prometheus.CounterFunc
}

func newMetrics(reg prometheus.Registerer, notices *Notices, brokers []string) *metrics {
	m := &metrics{
		broker: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "scangw_mqtt_broker",
			Help: "1 for the broker address (mqtt.broker or one of mqtt.brokers, password redacted) the session is up on, 0 for the others.",
		}, []string{"url"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scangw_mqtt_connected",
			Help: "1 while the MQTT session is up.",
		}),
		connectFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_mqtt_connect_failures_total",
			Help: "Connection attempts that failed, by reason.",
		}, []string{"reason"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_mqtt_reconnects_total",
			Help: "Sessions that were up and ended (so the uplink reconnects), by reason.",
		}, []string{"reason"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scangw_mqtt_published_total",
			Help: "Queued messages acknowledged by the broker (PUBACK) and deleted.",
		}),
		publishFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scangw_mqtt_publish_failures_total",
			Help: "Publishes that failed; each ends the session and is resent.",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scangw_mqtt_inflight_messages",
			Help: "QoS 1 publishes sent and not yet acknowledged.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "scangw_mqtt_publish_latency_seconds",
			Help:    "Time from PUBLISH sent to PUBACK received.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 16),
		}),
		poison: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scangw_mqtt_poison_total",
			Help: "Queued messages over mqtt.max_payload, held in the buffer unsent (counted once per message and process).",
		}),
		permitted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scangw_mqtt_publish_permitted",
			Help: "1 if the probe on the heartbeat topic came back (the broker lets the gateway publish), 0 if it did not (queue held), -1 not known yet.",
		}),
		duplicate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scangw_mqtt_duplicate_gateway",
			Help: "1 once another process was seen announcing itself on this gateway's status topic.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "scangw_mqtt_commands_total",
			Help: "Downlink commands answered, by command (unknown for anything else) and result (ok or the error code).",
		}, []string{"cmd", "result"}),
		downlinkDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "scangw_mqtt_downlink_dropped_total",
			Help: "Downlink messages (commands, rules) dropped because the downlink queue was full.",
		}),
		noticesDropped: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "scangw_mqtt_notices_dropped_total",
			Help: "Live notices (station indicator) dropped: not connected, queue full or not written.",
		}, func() float64 { return float64(notices.dropped.Load()) }),
	}
	for _, r := range connectReasons {
		m.connectFailures.WithLabelValues(r)
	}
	for _, r := range lostReasons {
		m.reconnects.WithLabelValues(r)
	}
	for _, b := range brokers {
		m.broker.WithLabelValues(redacted(b))
	}
	m.permitted.Set(-1)
	reg.MustRegister(m.connected, m.connectFailures, m.reconnects, m.published, m.publishFailures,
		m.inflight, m.latency, m.poison, m.permitted, m.duplicate, m.commands, m.downlinkDropped, m.noticesDropped, m.broker)
	return m
}
