package address_test

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"herald/alerts/address"
	"herald/alerts/address/addresstest"
)

// check runs Parse on in and compares with the expected canonical form or
// problem.
func check(t *testing.T, in, want, problem string) {
	t.Helper()
	got, err := address.Parse(in)
	switch {
	case problem == "" && (err != nil || got != want):
		t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
	case problem != "" && (err == nil || address.Problem(err) != problem || got != ""):
		t.Errorf("Parse(%q) = %q, %v; want the problem %q", in, got, err, problem)
	case err != nil && err.Error() != "email address "+problem:
		t.Errorf("Parse(%q) error %q, want the problem after \"email address\"", in, err)
	}
}

func TestParseTable(t *testing.T) {
	for _, tc := range addresstest.Cases() {
		t.Run(tc.Name, func(t *testing.T) { check(t, tc.Input, tc.Want, tc.Problem) })
	}
}

func TestParseMore(t *testing.T) {
	tests := []struct{ name, in, want, problem string }{
		{"decomposed umlaut", "user@exa\u0308mple.org", "user@xn--exmple-cua.org", ""},
		{"full-width letters and ideographic full stop", "ann@ｅｘａｍｐｌｅ。org", "ann@example.org", ""},
		{"every atext character", "!#$%&'*+-/=?^_`{|}~.x@example.org", "!#$%&'*+-/=?^_`{|}~.x@example.org", ""},
		{"soft hyphen", "ann@ex\u00adample.org", "", "must not contain invisible formatting characters, such as a zero-width space"},
		{"right-to-left override", "ann@example.org\u202e", "", "must not contain invisible formatting characters, such as a zero-width space"},
		{"byte-order mark", "\ufeffann@example.org", "", "must not contain invisible formatting characters, such as a zero-width space"},
		{"line separator", "ann@example.org\u2028x", "", "must not contain line breaks or control characters"},
		{"tab inside", "ann\t@example.org", "", "must not contain line breaks or control characters"},
		{"no-break space inside", "ann\u00a0lee@example.org", "", "must not contain spaces"},
		{"Latin-1 bytes", "j\xf6rg@example.org", "", "must be UTF-8 text"},
		{"comment", "ann@example.org(Ann)", "", `must not contain "(" after the @`},
		{"comma", "ann,bob@example.org", "", `must not contain "," before the @`},
		{"leading dot", ".ann@example.org", "", "must not start or end with a dot, or have two dots in a row, before the @"},
		{"nothing after the @", "ann@", "", "must have a domain after the @, like name@example.org"},
		{"hyphen at a label's start", "ann@-example.org", "", "must not have a hyphen at the start or end of a part of the domain"},
		{"bad punycode", "ann@xn--a.org", "", "must have a valid domain name after the @, like example.org"},
		{"64-octet label", "ann@" + strings.Repeat("b", 64) + ".org", "", "must not have a part of the domain longer than 63 characters"},
		{"huge input", strings.Repeat("a", 5000) + "@example.org", "", "must be at most 254 characters"},
		{"bracket only", "ann@[example.org", "", "must have a domain name after the @, not an IP address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.in, tc.want, tc.problem) })
	}
}

// FuzzParse checks what every entry point relies on: an accepted address
// is ASCII, short enough, a fixed point of Parse and safe in a header; a
// refusal is one line.
func FuzzParse(f *testing.F) {
	for _, tc := range addresstest.Cases() {
		f.Add(tc.Input)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := address.Parse(in)
		if err != nil {
			if p := address.Problem(err); p == "" || err.Error() != "email address "+p || strings.ContainsAny(p, "\r\n") {
				t.Fatalf("Parse(%q) error %#v", in, err)
			}
			return
		}
		if len(got) > 254 || strings.Count(got, "@") != 1 || strings.ContainsAny(got, " <>\"\r\n") {
			t.Fatalf("Parse(%q) = %q", in, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] >= utf8.RuneSelf || got[i] < ' ' || got[i] == 0x7f {
				t.Fatalf("Parse(%q) = %q, not printable ASCII", in, got)
			}
		}
		if got != strings.ToLower(got) {
			t.Fatalf("Parse(%q) = %q, not lower case", in, got)
		}
		if again, err := address.Parse(got); again != got || err != nil {
			t.Fatalf("Parse(%q) = %q, but Parse of that = %q, %v", in, got, again, err)
		}
	})
}

// Each refusal has a code, the same for the same problem, one of Reasons,
// so pages can say it in words of their own.
func TestReasonNamesEachProblem(t *testing.T) {
	codes := map[string]string{}
	for _, tc := range addresstest.Cases() {
		_, err := address.Parse(tc.Input)
		code, char := address.Reason(err)
		if tc.Accepted() {
			if code != "" {
				t.Errorf("%s: accepted, but Reason %q", tc.Name, code)
			}
			continue
		}
		if !slices.Contains(address.Reasons(), code) {
			t.Errorf("%s: Reason %q is not one of Reasons", tc.Name, code)
		}
		shown := char
		if char == `"` {
			shown = "quotes"
		}
		if strings.HasSuffix(code, "_char") != (char != "") || (char != "" && !strings.Contains(tc.Problem, shown)) {
			t.Errorf("%s: Reason %q, %q for the problem %q", tc.Name, code, char, tc.Problem)
		}
		// One code, one problem (but for the character it names).
		problem := tc.Problem
		if char != "" {
			problem = strings.Replace(problem, shown, "?", 1)
		}
		if prev, ok := codes[code]; ok && prev != problem {
			t.Errorf("%s: code %q names %q and %q", tc.Name, code, prev, problem)
		}
		codes[code] = problem
	}
	if code, _ := address.Reason(nil); code != "" {
		t.Error("Reason(nil) is not empty")
	}
}
