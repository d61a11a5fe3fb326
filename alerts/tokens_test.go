package alerts_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"herald/alerts"
	"herald/store"
	"herald/store/storetest"
)

func TestTokens(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	oldKey, _ := alerts.NewKeys("the old key, still verifying")
	keys, err := alerts.NewKeys("the new key that signs now", "the old key, still verifying")
	if err != nil {
		t.Fatal(err)
	}
	confirm := alerts.Token{Purpose: alerts.PurposeConfirm, Subject: 42, Expires: now.Add(alerts.ConfirmTTL)}
	s := keys.Sign(confirm)
	if strings.ContainsAny(s, "+/=") {
		t.Errorf("token %q is not URL-safe", s)
	}
	tests := []struct {
		name     string
		token    string
		at       time.Time
		purposes []alerts.Purpose
		want     alerts.Token
		err      error
	}{
		{"valid", s, now, []alerts.Purpose{alerts.PurposeConfirm}, confirm, nil},
		{"one second before expiry", s, now.Add(alerts.ConfirmTTL - time.Second), []alerts.Purpose{alerts.PurposeConfirm}, confirm, nil},
		{"at expiry", s, now.Add(alerts.ConfirmTTL), []alerts.Purpose{alerts.PurposeConfirm}, confirm, alerts.ErrTokenExpired},
		{"other purpose", s, now, []alerts.Purpose{alerts.PurposeManage, alerts.PurposeUnsubscribe}, alerts.Token{}, alerts.ErrTokenInvalid},
		{"signed by a key being retired", oldKey.Sign(confirm), now, []alerts.Purpose{alerts.PurposeConfirm}, confirm, nil},
		{"unsubscribe never expires", keys.Sign(alerts.Token{Purpose: alerts.PurposeUnsubscribe, Subject: 7}), now.AddDate(30, 0, 0),
			[]alerts.Purpose{alerts.PurposeUnsubscribe}, alerts.Token{Purpose: alerts.PurposeUnsubscribe, Subject: 7}, nil},
		{"empty", "", now, []alerts.Purpose{alerts.PurposeConfirm}, alerts.Token{}, alerts.ErrTokenInvalid},
		{"not base64", "!!!!", now, []alerts.Purpose{alerts.PurposeConfirm}, alerts.Token{}, alerts.ErrTokenInvalid},
		{"truncated", s[:len(s)-3], now, []alerts.Purpose{alerts.PurposeConfirm}, alerts.Token{}, alerts.ErrTokenInvalid},
		{"too long", strings.Repeat("A", 500), now, []alerts.Purpose{alerts.PurposeConfirm}, alerts.Token{}, alerts.ErrTokenInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keys.Verify(tc.token, tc.at, tc.purposes...)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if (err == nil || errors.Is(err, alerts.ErrTokenExpired)) && (got.Purpose != tc.want.Purpose || got.Subject != tc.want.Subject || !got.Expires.Equal(tc.want.Expires)) {
				t.Errorf("token %+v, want %+v", got, tc.want)
			}
		})
	}
	// Any single changed character breaks the signature.
	for i := range s {
		b := []byte(s)
		b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
		if _, err := keys.Verify(string(b), now, alerts.PurposeConfirm); err == nil {
			t.Errorf("token altered at %d still verifies", i)
		}
	}
	// A key that only verifies cannot be used by someone without the signing key.
	if _, err := oldKey.Verify(s, now, alerts.PurposeConfirm); !errors.Is(err, alerts.ErrTokenInvalid) {
		t.Errorf("a token signed with the new key verified with the old key alone")
	}
}

func FuzzVerify(f *testing.F) {
	keys, _ := alerts.NewKeys("a fuzzing key of enough length")
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	f.Add(keys.Sign(alerts.Token{Purpose: alerts.PurposeManage, Subject: 9, Expires: now.Add(time.Hour)}))
	f.Add("AQIDAJCYus0Gj5SQuOxEbIAVOKJ_iBqqWA")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := keys.Verify(s, now, alerts.PurposeConfirm, alerts.PurposeManage, alerts.PurposeUnsubscribe,
			alerts.PurposeUnsubscribeAll, alerts.PurposeAddressChange)
		if err == nil && keys.Sign(tok) != s {
			t.Fatalf("%q verified but is not what Sign makes of %+v", s, tok)
		}
	})
}

func TestLoadKeys(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	tok := alerts.Token{Purpose: alerts.PurposeUnsubscribe, Subject: 3}

	k1, generated, err := alerts.LoadKeys(ctx, db, nil, "")
	if err != nil || !generated {
		t.Fatalf("generated key: %v, %v", generated, err)
	}
	k2, generated, err := alerts.LoadKeys(ctx, db, nil, "")
	if err != nil || !generated {
		t.Fatalf("second load: %v, %v", generated, err)
	}
	if _, err := k2.Verify(k1.Sign(tok), now, alerts.PurposeUnsubscribe); err != nil {
		t.Fatalf("the stored key changed between starts: %v", err)
	}
	env, generated, err := alerts.LoadKeys(ctx, db, nil, "a key from the environment")
	if err != nil || generated {
		t.Fatalf("env key: %v, %v", generated, err)
	}
	if _, err := env.Verify(k1.Sign(tok), now, alerts.PurposeUnsubscribe); err == nil {
		t.Errorf("the environment key should replace the stored one")
	}
	conf, _, err := alerts.LoadKeys(ctx, db, []string{"configured key number one", "a key from the environment"}, "ignored when keys are configured")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conf.Verify(env.Sign(tok), now, alerts.PurposeUnsubscribe); err != nil {
		t.Errorf("a configured second key should verify: %v", err)
	}
	if _, _, err := alerts.LoadKeys(ctx, db, []string{"short"}, ""); err == nil {
		t.Errorf("a short configured key was accepted")
	}
	if _, _, err := alerts.LoadKeys(ctx, db, nil, "short"); err == nil {
		t.Errorf("a short environment key was accepted")
	}
}

func TestReturnPathTokens(t *testing.T) {
	keys, _ := alerts.NewKeys("the new key that signs now", "the old key, still verifying")
	other, _ := alerts.NewKeys("a key Herald never had, forging")
	s := keys.SignReturnPath(12345)
	if s != keys.SignReturnPath(12345) {
		t.Fatal("the token of one message differs between attempts")
	}
	if strings.ToLower(s) != s || len("bounces+"+s) > 64 {
		t.Fatalf("token %q: not lower case, or too long for a local part", s)
	}
	for _, tok := range []string{s, strings.ToUpper(s)} {
		if id, err := keys.VerifyReturnPath(tok); err != nil || id != 12345 {
			t.Fatalf("VerifyReturnPath(%q) = %d, %v", tok, id, err)
		}
	}
	link := keys.Sign(alerts.Token{Purpose: alerts.PurposeUnsubscribe, Subject: 12345})
	for name, tok := range map[string]string{
		"forged":           other.SignReturnPath(12345),
		"empty":            "",
		"truncated":        s[:len(s)-2],
		"line break":       s[:4] + "\n" + s[4:],
		"another purpose":  link,
		"another message":  keys.SignReturnPath(12346)[:10] + s[10:],
		"not base32":       "!!!!!!!!",
		"absurdly long":    strings.Repeat("a", 300),
		"trailing garbage": s + "a",
	} {
		if id, err := keys.VerifyReturnPath(tok); !errors.Is(err, alerts.ErrTokenInvalid) {
			t.Errorf("%s: VerifyReturnPath = %d, %v; want ErrTokenInvalid", name, id, err)
		}
	}
}
