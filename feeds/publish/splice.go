package publish

import (
	"bytes"
	"fmt"

	"herald/store"
)

// Every document is written in pieces: its head, which is the document
// encoded with no entries, and each entry encoded alone, indented as it
// reads inside the document; the entries are put in where the head ends
// its list of them. Encoding is the same, byte for byte, as encoding the
// whole document at once (the golden files hold those bytes), and an
// entry's bytes depend only on the entry. So when a feed is rendered again
// the entries it already showed are copied from its previous documents
// (renderedFeed) and only the new or changed ones are encoded.

// Format indexes of renderEntry.encoded and renderedEntry.spans.
const (
	renderAtomIndex = iota
	renderRSSIndex
	renderJSONIndex
	renderFormatCount
)

// renderFormatIndex returns the index of a format.
func renderFormatIndex(format string) int {
	switch format {
	case "atom":
		return renderAtomIndex
	case "rss":
		return renderRSSIndex
	}
	return renderJSONIndex
}

// renderSplicer says where a format's entries go: the head (the document
// encoded with no entries) ends with cut, which becomes open, the entries
// separated by sep, close and after.
type renderSplicer struct {
	cut, open, sep, close, after string
}

var (
	// Atom entries are the last children of <feed>.
	renderAtomSplice = renderSplicer{cut: "\n</feed>\n", after: "\n</feed>\n"}
	// RSS items are the last children of <channel>.
	renderRSSSplice = renderSplicer{cut: "\n  </channel>\n</rss>\n", after: "\n  </channel>\n</rss>\n"}
	// JSON Feed items are the last member of the top-level object; an
	// empty list is written [].
	renderJSONSplice = renderSplicer{cut: "[]\n}\n", open: "[", sep: ",", close: "\n  ]", after: "\n}\n"}
)

// renderSpan is where one entry's bytes lie in a document.
type renderSpan struct{ start, end int }

// splice writes the document of head and entries: each entry's bytes are
// those a previous document held (entry.encoded) or else encode's. It
// returns the document and where each entry lies in it.
func (s renderSplicer) splice(head []byte, entries []renderEntry, format int, encode func(*renderEntry) ([]byte, error)) ([]byte, []renderSpan, error) {
	if len(entries) == 0 {
		return head, nil, nil
	}
	if !bytes.HasSuffix(head, []byte(s.cut)) {
		return nil, nil, fmt.Errorf("feeds: the document head does not end with %q", s.cut)
	}
	parts := make([][]byte, len(entries))
	size := len(head) + len(s.open) + len(s.close) + len(s.after)
	for i := range entries {
		e := &entries[i]
		b := e.encoded[format]
		if b == nil {
			var err error
			if b, err = encode(e); err != nil {
				return nil, nil, err
			}
		}
		parts[i] = b
		size += len(b) + len(s.sep)
	}
	out := make([]byte, 0, size)
	out = append(out, head[:len(head)-len(s.cut)]...)
	out = append(out, s.open...)
	spans := make([]renderSpan, len(entries))
	for i, b := range parts {
		if i > 0 {
			out = append(out, s.sep...)
		}
		spans[i].start = len(out)
		out = append(out, b...)
		spans[i].end = len(out)
	}
	out = append(out, s.close...)
	out = append(out, s.after...)
	return out, spans, nil
}

// renderedFeed is what the renderer keeps of a current feed it rendered:
// its documents and where each entry lies in them, so that the next
// render copies the entries that did not change.
type renderedFeed struct {
	bodies  [renderFormatCount][]byte
	entries []renderedEntry
}

// renderedEntry is one entry of a rendered feed: the release, its content
// hash and department name (what its bytes were made from) and its place
// in each format's document.
type renderedEntry struct {
	release    int64
	hash, dept string
	spans      [renderFormatCount]renderSpan
}

// byRelease indexes the entries of f (nil for none) by release.
func (f *renderedFeed) byRelease() map[int64]*renderedEntry {
	if f == nil {
		return nil
	}
	m := make(map[int64]*renderedEntry, len(f.entries))
	for i := range f.entries {
		m[f.entries[i].release] = &f.entries[i]
	}
	return m
}

// reusable returns the entry of f, indexed as known, that shows r as it
// is now (the same content, the same department name), or nil.
func (f *renderedFeed) reusable(known map[int64]*renderedEntry, r *store.Release) *renderedEntry {
	if k := known[r.ID]; k != nil && k.hash == r.ContentHash && k.dept == r.DepartmentName {
		return k
	}
	return nil
}
