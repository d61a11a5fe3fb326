package web_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"herald/store"
)

func TestSuppressionsAreListedWithFilters(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		for _, sup := range []store.Suppression{
			{Address: "ana@example.org", Cause: store.CauseBounce, Reason: "5.1.1 user unknown", Source: "pipe", OutboxID: 7, Report: "Status: 5.1.1"},
			{Address: "bob@example.net", Cause: store.CauseComplaint, Reason: "feedback-type abuse", Source: "smtp", OutboxID: 8},
		} {
			if _, err := tx.SuppressAddress(sup); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	list := func(query string) []store.Suppression {
		t.Helper()
		r := s.api("GET", "/api/v1/suppressions"+query, nil)
		wantStatus(t, r, 200)
		var out []store.Suppression
		if err := json.Unmarshal([]byte(r.body), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if l := list(""); len(l) != 2 {
		t.Fatalf("all = %+v", l)
	}
	if l := list("?cause=complaint"); len(l) != 1 || l[0].Address != "bob@example.net" || l[0].Source != "smtp" || l[0].OutboxID != 8 {
		t.Fatalf("complaints = %+v", l)
	}
	if l := list("?q=ana"); len(l) != 1 || l[0].Cause != store.CauseBounce || l[0].Report != "Status: 5.1.1" {
		t.Fatalf("search = %+v", l)
	}
	if l := list("?q=nobody"); len(l) != 0 {
		t.Fatalf("no match = %+v", l)
	}
	wantStatus(t, s.api("GET", "/api/v1/suppressions?cause=spam", nil), 400)
	wantStatus(t, s.api("GET", "/api/v1/suppressions?limit=0", nil), 400)

	s.login()
	r := s.get("/admin/suppressions?cause=bounce")
	wantStatus(t, r, 200)
	if !strings.Contains(r.body, "ana@example.org") || strings.Contains(r.body, "bob@example.net") || !strings.Contains(r.body, "5.1.1 user unknown") {
		t.Errorf("console list:\n%s", r.body)
	}
	wantStatus(t, s.get("/admin/suppressions?cause=spam"), 400)
}
