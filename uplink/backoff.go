package uplink

import (
	"math"
	"time"
)

// The reconnect schedule of an outage (see backoff): a fleet's attempts are
// spaced ln(backoffRatio)·t apart t into an outage, then backoffSpread
// apart, then a backoffSlowdown-th of t apart, up to reconnect_max.
const (
	backoffRatio    = 5
	backoffSpread   = 24 * time.Second
	backoffSlowdown = 6
)

// backoff is the wait before reconnect attempt n (1 after the session was
// lost) of one outage. phase, in [0, 1), is drawn at random once per outage
// and kept for all its attempts.
//
// Why not full jitter, each wait drawn anew (uniform in [lo,
// lo·2^(n-1)]), as before: a broker restart ends every gateway's session in
// the same instant, so the fleet's attempts start in step, and redrawing
// each wait leaves most of the fleet on the same few attempts with short
// waits. 200 gateways on one Mosquitto stopped for 10 s came back 18.5 % in
// the first second after it returned and 15 % in the third
// (BenchmarkFleetStorm).
//
// Instead every gateway follows one schedule, shifted by its phase: attempt
// n is made at attemptAt(n-1+phase) after the loss, where attemptAt(k) grows
// by the spacing g(t) per unit of k. With phases uniform, a fleet then makes
// fleet/g(t) attempts a second t into the outage, and when the broker
// returns at t the share of the fleet back in the next second is about
// 1/g(t). g is
//
//   - ln(5)·t (attempt k at lo·5^k) while the outage is young: a lone
//     gateway whose network blipped for 1 s is back 1.2 s after it
//     returned (median; 99 % within 3.9 s). The price is paid by a fleet
//     after a short outage, which a gateway cannot tell from a blip: 25 %
//     of it back in the first second after 2 s, 11 % after 5 s, 5.9 %
//     after 10 s.
//   - 24 s from 15 s on: each second then takes at most 1/24 of the fleet
//     (4.3 % in whole seconds), and all are back within 24 s, median 12 s.
//     Binomial noise over 24 such seconds makes a fleet of 200 exceed 10 %
//     in one of them after 1.3 % of 10 s outages; a 20 s spacing (5 %)
//     would make that 3 %.
//   - t/6 from 2.4 min on, up to hi (6 min with the default 60 s): a broker
//     down for hours, or a gateway with bad credentials, is tried once
//     every reconnect_max.
//
// Time here is the schedule's: a failed attempt is taken to cost nothing.
// One that waits out connect_timeout shifts every gateway's schedule
// alike, so the spread stays.
//
// TestBackoffFleetModel runs this on a model of the fleet. lo and hi still
// bound every wait: a user's reconnect_min and reconnect_max keep their
// meaning.
func backoff(lo, hi time.Duration, n int, phase float64) time.Duration {
	hi = max(hi, lo)
	phase = min(max(phase, 0), 1)
	k := float64(max(n, 1)-1) + phase
	w := attemptAt(float64(lo), float64(hi), k)
	if n > 1 {
		w -= attemptAt(float64(lo), float64(hi), k-1)
	}
	// The difference of two large floats is off by a few ulps: a wait
	// within 1e-9 of hi is hi, or the waits that should all be hi would
	// wobble around it.
	if !(w < float64(hi)*(1-1e-9)) {
		return hi
	}
	return max(time.Duration(math.Round(w)), lo)
}

// attemptAt is when attempt k (from 0) of an outage's schedule falls, in
// ns after the loss: the t with ∫ du/g(u) over [lo, t] = k, g as in
// backoff, one closed form per piece of g.
func attemptAt(lo, hi, k float64) float64 {
	spread := min(max(float64(backoffSpread), lo), hi)
	pieces := [...]struct {
		end    float64 // where the piece ends
		growth float64 // g = growth·t on the piece, or
		gap    float64 // g = gap (growth 0)
	}{
		{spread / math.Log(backoffRatio), math.Log(backoffRatio), 0},
		{backoffSlowdown * spread, 0, spread},
		{backoffSlowdown * hi, 1.0 / backoffSlowdown, 0},
		{math.Inf(1), 0, hi},
	}
	t := lo
	for _, p := range pieces {
		if t >= p.end {
			continue
		}
		if p.growth > 0 {
			if length := math.Log(p.end/t) / p.growth; k > length {
				k -= length
				t = p.end
				continue
			}
			return t * math.Exp(k*p.growth)
		}
		if length := (p.end - t) / p.gap; k > length {
			k -= length
			t = p.end
			continue
		}
		return t + k*p.gap
	}
	return math.Inf(1) // not reached: the last piece has no end
}
