package rules

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"sync"
)

// MaxSize is the default cap on an envelope, in bytes. A million deny
// entries of 12-character serials grouped by product take about 15 MB of
// payload and 20 MB of envelope.
const MaxSize = 32 << 20

// envelope is the signed wrapper a rule set travels in.
type envelope struct {
	Payload []byte `json:"payload"` // base64 in JSON
	Sig     []byte `json:"sig,omitempty"`
	Key     string `json:"key,omitempty"`
}

// Sign checks payload (a rule set as JSON; see Check) and wraps it in an
// envelope signed with priv. The envelope names the signing key by its
// public key in base64 (KeyID), which lets a gateway with several trusted
// keys verify only once.
func Sign(payload []byte, priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("rules: sign: private key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	if _, err := Check(payload); err != nil {
		return nil, fmt.Errorf("rules: sign: %w", err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	return json.Marshal(envelope{Payload: payload, Sig: ed25519.Sign(priv, payload), Key: KeyID(pub)})
}

// Unsigned checks payload and wraps it in an envelope without a signature,
// for gateways configured with AllowUnsigned (development, test benches).
func Unsigned(payload []byte) ([]byte, error) {
	if _, err := Check(payload); err != nil {
		return nil, fmt.Errorf("rules: wrap: %w", err)
	}
	return json.Marshal(envelope{Payload: payload})
}

// KeyID names a public key in envelopes and logs: its standard base64
// form, the same text a config lists it by.
func KeyID(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// ParsePublicKey reads a public key in standard base64, as configs and
// KeyID write it.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("rules: public key: %w", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("rules: public key has %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// ParsePrivateKey reads a private key in standard base64: the 32-byte seed
// or the 64-byte key Go's crypto/ed25519 uses.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("rules: private key: %w", err)
	}
	switch len(b) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(b), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(b), nil
	}
	return nil, fmt.Errorf("rules: private key has %d bytes, want %d or %d", len(b), ed25519.SeedSize, ed25519.PrivateKeySize)
}

var envelopeShape = sync.OnceValue(func() *shape { return shapeOf(reflect.TypeFor[envelope]()) })

// trust is how envelopes are checked.
type trust struct {
	keys          []ed25519.PublicKey
	allowUnsigned bool // only ever true with no keys
	maxSize       int
	site, gateway string // "" accepts any
}

// Decode checks an envelope and returns the rule set in it. The checks,
// in order: size (CodeTooLarge), envelope JSON (CodeBadJSON), signature by
// one of keys (CodeUnsigned, CodeBadSignature; with no keys every set is
// refused as unsigned), the payload's schema (CodeBadSchema), its version
// against current (CodeNotNewer), and every rule (CodeBadRule). The
// payload is not parsed before its signature verified.
func Decode(envelope []byte, keys []ed25519.PublicKey, current int64) (*Set, error) {
	return decode(envelope, trust{keys: keys, maxSize: MaxSize}, func(string) int64 { return current })
}

// DecodeUnsigned is Decode for a gateway that trusts no key and allows
// unsigned sets: it skips the signature check and runs all the others.
func DecodeUnsigned(envelope []byte, current int64) (*Set, error) {
	return decode(envelope, trust{allowUnsigned: true, maxSize: MaxSize}, func(string) int64 { return current })
}

// decode runs the checks of Decode; current gives the version in use for
// a scope.
func decode(env []byte, t trust, current func(scope string) int64) (*Set, error) {
	payload, err := open(env, t)
	if err != nil {
		return nil, err
	}
	h, err := readHeader(payload)
	if err != nil {
		return nil, err
	}
	// A gateway set without its gateway is a bad rule, reported by compile.
	if h.Scope == ScopeGateway && t.gateway != "" && h.Gateway != "" && h.Gateway != t.gateway {
		return nil, refuse(CodeWrongTarget, fmt.Sprintf("the set is for gateway %q, this is %q", h.Gateway, t.gateway), nil)
	}
	if t.site != "" && h.Site != "" && h.Site != t.site {
		return nil, refuse(CodeWrongTarget, fmt.Sprintf("the set is for site %q, this is %q", h.Site, t.site), nil)
	}
	// A version below 1 or an unknown scope is reported as a bad rule by
	// compile.
	if cur := current(h.Scope); h.Version >= 1 && h.Version <= cur && (h.Scope == ScopeSite || h.Scope == ScopeGateway) {
		return nil, refuse(CodeNotNewer, "version "+strconv.FormatInt(h.Version, 10)+" is not newer than "+strconv.FormatInt(cur, 10), nil)
	}
	return compile(payload)
}

// open checks the envelope and its signature and returns the payload.
func open(env []byte, t trust) ([]byte, error) {
	if t.maxSize > 0 && len(env) > t.maxSize {
		return nil, refuse(CodeTooLarge, fmt.Sprintf("%d bytes, at most %d allowed", len(env), t.maxSize), nil)
	}
	// json.Unmarshal decodes the payload's base64 straight from env;
	// json.Decoder would first copy all of env into its own buffer.
	var e envelope
	if err := json.Unmarshal(env, &e); err != nil {
		return nil, refuse(CodeBadJSON, "envelope: "+err.Error(), err)
	}
	var unknown string
	unknownFields(env, envelopeShape(), func(path string) {
		if unknown == "" {
			unknown = path
		}
	})
	if unknown != "" {
		return nil, refuse(CodeBadJSON, "envelope: unknown field "+strconv.Quote(unknown), nil)
	}
	if len(e.Payload) == 0 {
		return nil, refuse(CodeBadJSON, "envelope: no payload", nil)
	}
	switch {
	case len(t.keys) == 0 && t.allowUnsigned:
		return e.Payload, nil // nothing to verify against; the config said so
	case len(t.keys) == 0:
		return nil, refuse(CodeUnsigned, "no trusted keys are configured and unsigned sets are not allowed", nil)
	case len(e.Sig) == 0:
		return nil, refuse(CodeUnsigned, "the set is not signed", nil)
	case len(e.Sig) != ed25519.SignatureSize:
		return nil, refuse(CodeBadSignature, fmt.Sprintf("signature has %d bytes, want %d", len(e.Sig), ed25519.SignatureSize), nil)
	}
	// Verifying hashes the whole payload; on a Pi that is tens of ms for a
	// large set, so the named key is tried alone when it is one we trust.
	for _, k := range t.keys {
		if e.Key != "" && len(k) == ed25519.PublicKeySize && KeyID(k) == e.Key {
			if ed25519.Verify(k, e.Payload, e.Sig) {
				return e.Payload, nil
			}
			return nil, refuse(CodeBadSignature, "the signature does not verify with key "+e.Key, nil)
		}
	}
	for _, k := range t.keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, e.Payload, e.Sig) {
			return e.Payload, nil
		}
	}
	return nil, refuse(CodeBadSignature, "the signature does not verify with any trusted key", nil)
}
