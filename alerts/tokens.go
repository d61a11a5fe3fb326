package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"herald/store"
)

// Purpose says what a token may be used for. It is signed with the rest,
// so a token made for one purpose never works for another.
type Purpose byte

// Token purposes and what their Subject and Aux hold.
const (
	// PurposeConfirm: Subject is the pending subscription.
	PurposeConfirm Purpose = 1
	// PurposeManage: Subject is the subscriber.
	PurposeManage Purpose = 2
	// PurposeUnsubscribe: Subject is one subscription.
	PurposeUnsubscribe Purpose = 3
	// PurposeUnsubscribeAll: Subject is the subscriber; Aux is the
	// frequency (frequencyCode) whose subscriptions end, 0 for all.
	PurposeUnsubscribeAll Purpose = 4
	// PurposeAddressChange: Subject is the subscriber; Aux is the nonce of
	// the pending change, so only the latest request's link works.
	PurposeAddressChange Purpose = 5
	// PurposeReturnPath: Subject is the outbox message whose envelope
	// sender (bounces+TOKEN@domain) the token is in. It never expires: a
	// bounce may come days later, and a message sent again must carry the
	// same envelope sender.
	PurposeReturnPath Purpose = 6
)

// Token lifetimes. Unsubscribe tokens never expire: a link in an old email
// must still let its reader leave.
const (
	ConfirmTTL = 7 * 24 * time.Hour
	ManageTTL  = 7 * 24 * time.Hour
)

// Token is what a signed link says. It holds ids, never an address.
type Token struct {
	Purpose Purpose
	Subject int64
	Aux     int64
	// Expires is when the token stops working; zero means never.
	Expires time.Time
}

// Token errors. An expired token is otherwise genuine: Verify returns it
// with ErrTokenExpired so a page can offer a fresh start.
var (
	ErrTokenInvalid = errors.New("alerts: the link is not valid")
	ErrTokenExpired = errors.New("alerts: the link has expired")
)

// Keys sign and verify tokens: the first key signs, every key verifies,
// so a new key can be put first while links signed with the old one keep
// working until it is removed.
type Keys struct {
	keys [][]byte
}

// MinKeyLen is the shortest key accepted.
const MinKeyLen = 16

// NewKeys returns keys from secrets of at least MinKeyLen bytes.
func NewKeys(secrets ...string) (Keys, error) {
	if len(secrets) == 0 {
		return Keys{}, errors.New("alerts: no token key")
	}
	var k Keys
	for i, s := range secrets {
		if len(s) < MinKeyLen {
			return Keys{}, fmt.Errorf("alerts: token key %d is shorter than %d bytes", i, MinKeyLen)
		}
		k.keys = append(k.keys, []byte(s))
	}
	return k, nil
}

// tokenKeySetting is where a generated key is kept.
const tokenKeySetting = "alerts.token_key"

// LoadKeys returns the token keys: the configured ones if any, else the
// key in env (the value of HERALD_TOKEN_KEY), else a key generated once and
// kept in the database so links survive restarts. generated reports the
// last case, for the caller to warn that the key lives beside the data it
// protects and is lost with a fresh database.
func LoadKeys(ctx context.Context, db *store.DB, configured []string, env string) (keys Keys, generated bool, err error) {
	if len(configured) > 0 {
		keys, err = NewKeys(configured...)
		return keys, false, err
	}
	if env != "" {
		keys, err = NewKeys(env)
		if err != nil {
			return Keys{}, false, fmt.Errorf("alerts: HERALD_TOKEN_KEY: %w", err)
		}
		return keys, false, nil
	}
	v, _, err := db.SettingOrCreate(ctx, tokenKeySetting, func() (string, error) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		return base64.RawURLEncoding.EncodeToString(b[:]), nil
	})
	if err != nil {
		return Keys{}, false, fmt.Errorf("alerts: token key: %w", err)
	}
	keys, err = NewKeys(v)
	return keys, true, err
}

const (
	tokVersion = 1
	tokMACLen  = 16 // HMAC-SHA256 truncated to 128 bits
	tokDomain  = "herald token\x00"
)

func tokMAC(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tokDomain))
	m.Write(payload)
	return m.Sum(nil)[:tokMACLen]
}

// Sign returns t as a URL-safe string.
func (k Keys) Sign(t Token) string {
	return base64.RawURLEncoding.EncodeToString(k.sign(t))
}

// sign returns t's bytes and their MAC.
func (k Keys) sign(t Token) []byte {
	if len(k.keys) == 0 {
		panic("alerts: Sign with no keys")
	}
	var exp uint64
	if !t.Expires.IsZero() {
		exp = uint64(t.Expires.Unix())
	}
	b := make([]byte, 0, 2+3*binary.MaxVarintLen64+tokMACLen)
	b = append(b, tokVersion, byte(t.Purpose))
	b = binary.AppendUvarint(b, uint64(t.Subject))
	b = binary.AppendUvarint(b, uint64(t.Aux))
	b = binary.AppendUvarint(b, exp)
	return append(b, tokMAC(k.keys[0], b)...)
}

// Verify checks that s is a token signed by one of the keys for one of
// purposes, not expired at now. An expired but genuine token is returned
// with ErrTokenExpired; anything else wrong gives ErrTokenInvalid.
func (k Keys) Verify(s string, now time.Time, purposes ...Purpose) (Token, error) {
	if len(s) > 200 {
		return Token{}, ErrTokenInvalid
	}
	// The decoder skips CR and LF; a token is one exact string.
	if strings.ContainsAny(s, "\r\n") {
		return Token{}, ErrTokenInvalid
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return Token{}, ErrTokenInvalid
	}
	return k.verify(b, now, purposes)
}

// verify checks a token's bytes; see Verify.
func (k Keys) verify(b []byte, now time.Time, purposes []Purpose) (Token, error) {
	if len(b) < 2+3+tokMACLen {
		return Token{}, ErrTokenInvalid
	}
	payload, mac := b[:len(b)-tokMACLen], b[len(b)-tokMACLen:]
	ok := false
	for _, key := range k.keys {
		if hmac.Equal(mac, tokMAC(key, payload)) {
			ok = true
			break
		}
	}
	if !ok || payload[0] != tokVersion {
		return Token{}, ErrTokenInvalid
	}
	t := Token{Purpose: Purpose(payload[1])}
	rest := payload[2:]
	var fields [3]uint64
	for i := range fields {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return Token{}, ErrTokenInvalid
		}
		fields[i], rest = v, rest[n:]
	}
	if len(rest) != 0 || fields[0] > 1<<62 || fields[1] > 1<<63-1 || fields[2] > 1<<40 {
		return Token{}, ErrTokenInvalid
	}
	t.Subject, t.Aux = int64(fields[0]), int64(fields[1])
	if fields[2] != 0 {
		t.Expires = time.Unix(int64(fields[2]), 0).UTC()
	}
	match := false
	for _, p := range purposes {
		match = match || p == t.Purpose
	}
	if !match {
		return Token{}, ErrTokenInvalid
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return t, ErrTokenExpired
	}
	return t, nil
}

// returnPathEncoding writes return-path tokens: lower-case base32, since
// some relays and mailbox providers fold the case of the local part the
// token travels in.
var returnPathEncoding = base32.HexEncoding.WithPadding(base32.NoPadding)

// SignReturnPath returns the token that goes in the envelope sender of
// outbox message id (bounces+TOKEN@domain). It is the same for every
// attempt to send the message, and holds nothing but the id.
func (k Keys) SignReturnPath(id int64) string {
	return strings.ToLower(returnPathEncoding.EncodeToString(k.sign(Token{Purpose: PurposeReturnPath, Subject: id})))
}

// VerifyReturnPath checks a token from a bounce address, in any case, and
// returns the outbox message it names, or ErrTokenInvalid.
func (k Keys) VerifyReturnPath(s string) (int64, error) {
	if len(s) > 100 {
		return 0, ErrTokenInvalid
	}
	up := strings.ToUpper(s)
	b, err := returnPathEncoding.DecodeString(up)
	// One token, one spelling (but for case): the decoder would skip line
	// breaks and ignore stray trailing bits.
	if err != nil || returnPathEncoding.EncodeToString(b) != up {
		return 0, ErrTokenInvalid
	}
	t, err := k.verify(b, time.Time{}, []Purpose{PurposeReturnPath})
	if err != nil {
		return 0, err
	}
	return t.Subject, nil
}

// frequencyCode numbers frequencies for PurposeUnsubscribeAll's Aux.
func frequencyCode(f string) int64 {
	for i, v := range store.Frequencies() {
		if v == f {
			return int64(i + 1)
		}
	}
	return 0
}

// frequencyOfCode is the inverse of frequencyCode; "" means all.
func frequencyOfCode(c int64) (string, bool) {
	if c == 0 {
		return "", true
	}
	freqs := store.Frequencies()
	if c < 0 || c > int64(len(freqs)) {
		return "", false
	}
	return freqs[c-1], true
}
