package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Excerpt shortens one line of text (as Line and Plain return) to at most
// max characters, the ellipsis that marks the cut included, for a reader:
// a summary on a page, a subject line, the start of a release in a feed.
// It cuts after the last whole word when that keeps more than half of the
// text it could keep, else inside the word (a long URL, or a language
// written without spaces); never inside a character or between a
// character and the marks that combine with it. Spaces and the punctuation
// that would dangle before the ellipsis (, . ; :) go. max <= 0 means no
// limit.
func Excerpt(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	cut := runeOffset(s, max-1) // room for the ellipsis
	for cut > 0 && joinsPrevious(s, cut) {
		_, size := utf8.DecodeLastRuneInString(s[:cut])
		cut -= size
	}
	head := s[:cut]
	if sp := strings.LastIndexByte(head, ' '); sp > len(head)/2 {
		head = head[:sp]
	}
	return strings.TrimRight(head, " ,.;:") + "…"
}

// Truncate bounds one line of text (as Line returns) that Herald stores,
// such as an upstream title or category: a text longer than max characters
// keeps its first max characters, one more when the last of them is a
// space so that it never ends in one, and then an ellipsis. Unlike
// Excerpt it does not look for a word: the same upstream text must always
// give the same stored bytes, since a stored title that changes is
// announced again. max <= 0 means no limit.
func Truncate(s string, max int) string {
	if max <= 0 || utf8.RuneCountInString(s) <= max {
		return s
	}
	cut := runeOffset(s, max)
	if s[cut-1] == ' ' {
		_, size := utf8.DecodeRuneInString(s[cut:])
		cut += size
	}
	if cut == len(s) {
		return s
	}
	return strings.TrimRightFunc(s[:cut], unicode.IsSpace) + "…"
}

// runeOffset returns the byte offset of the n-th rune of s (len(s) when s
// has no more than n runes).
func runeOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

// joinsPrevious reports whether the character at byte i of s belongs with
// the one before it: a combining mark, a variation selector, a zero-width
// joiner or what follows one, a skin tone, the second half of a flag.
// Cutting there would change what the earlier character looks like.
func joinsPrevious(s string, i int) bool {
	r, _ := utf8.DecodeRuneInString(s[i:])
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	switch {
	case unicode.Is(unicode.M, r), unicode.Is(unicode.Variation_Selector, r), isSkinTone(r):
		return true
	case r == '\u200D', prev == '\u200D':
		return true
	case isRegional(r) && isRegional(prev):
		// Flags are pairs of regional indicators: count back to see
		// whether i falls inside one.
		n := 0
		for j := i; j > 0; {
			p, size := utf8.DecodeLastRuneInString(s[:j])
			if !isRegional(p) {
				break
			}
			n++
			j -= size
		}
		return n%2 == 1
	}
	return false
}

func isSkinTone(r rune) bool { return r >= 0x1F3FB && r <= 0x1F3FF }

func isRegional(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }
