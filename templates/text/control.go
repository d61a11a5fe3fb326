// Package text owns Herald's rules for text: reading HTML as plain text,
// cutting excerpts, cleaning control characters, and the one policy that
// sanitises the HTML publishers send. The pull side, the feeds, the pages
// and the emails all use it, so a title or a summary reads the same
// wherever it appears.
package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// IsControl reports whether r is a control character (C0, DEL or C1; tab
// and line breaks included) or a Unicode line or paragraph separator
// (U+2028, U+2029): the characters a one-line field may not hold, because
// each can break or disguise a line in an email header, a log or a page.
func IsControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// HasControl reports whether s holds a character IsControl reports.
func HasControl(s string) bool { return strings.ContainsFunc(s, IsControl) }

// Clean returns multi-line text (or HTML) without the characters text may
// not carry: control characters other than tab, line feed and carriage
// return, Unicode noncharacters, and bytes that are not UTF-8. Line
// structure stays. Replacement characters (U+FFFD) stay too: they record
// an earlier decoding error, and callers that must keep the bytes of an
// upstream id stable depend on them.
func Clean(s string) string {
	// Find the first character to drop; most text has none.
	i := 0
	for i < len(s) {
		if c := s[i]; (c >= 0x20 && c < 0x7f) || c == '\t' || c == '\n' || c == '\r' {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !cleanKeeps(r, size) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if cleanKeeps(r, size) {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// cleanKeeps reports whether Clean keeps the character r, size bytes long.
func cleanKeeps(r rune, size int) bool {
	switch {
	case r == utf8.RuneError && size == 1:
		return false
	case r == '\t', r == '\n', r == '\r':
		return true
	}
	return !unicode.IsControl(r) && !isNonchar(r)
}

// Line returns s as one line of text, for a title, a name or a label:
// every run of white space (line breaks included) becomes one space, the
// ends are trimmed, and characters that have no place in a label are
// dropped: control characters, the bidirectional embedding, override and
// isolate controls (which can make a line read differently from what it
// says), the byte-order mark and noncharacters. Bytes that are not UTF-8
// become U+FFFD.
func Line(s string) string {
	if isLine(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false // a space is due before the next character
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			// Copy a run of printable ASCII at once: most text is one.
			j := i
			for j < len(s) && s[j] > ' ' && s[j] < 0x7f {
				j++
			}
			if j == i {
				if c == ' ' || (c >= '\t' && c <= '\r') {
					space = b.Len() > 0
				}
				i++
				continue
			}
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteString(s[i:j])
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
		case dropFromLine(r):
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			if r == utf8.RuneError && size == 1 {
				b.WriteString("\uFFFD")
			} else {
				b.WriteString(s[i : i+size])
			}
		}
		i += size
	}
	return b.String()
}

// isLine reports whether Line(s) == s, without allocating.
func isLine(s string) bool {
	prevSpace := true // no leading space
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == ' ':
				if prevSpace {
					return false
				}
				prevSpace = true
			case c < 0x20 || c == 0x7f:
				return false
			default:
				prevSpace = false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unicode.IsSpace(r) || dropFromLine(r) {
			return false
		}
		prevSpace = false
		i += size
	}
	return !prevSpace || s == ""
}

// dropFromLine reports the characters Line drops (white space aside).
func dropFromLine(r rune) bool {
	switch {
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0xFEFF:
		return true
	}
	return isNonchar(r)
}

// isNonchar reports Unicode noncharacters: U+FDD0 to U+FDEF and the last
// two code points of every plane. They are for a program's internal use,
// never for interchange, and XML validators flag them.
func isNonchar(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}
