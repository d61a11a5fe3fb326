package templates

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	texttemplate "text/template"
)

// Messages are the words Herald says outside the page and email
// templates: titles, notices, error pages, form problems, the labels of
// email footers. Each is a block of messages/*.txt, a text template that
// gets its data as named values ({{.Name}}) and says nothing Go code
// wrote. A file in the override directory replaces the blocks it defines
// and keeps the built-in words of the others, so a translation can be
// done, and checked, a block at a time.
type Messages struct {
	// site is the built-in words with the overrides on top; builtin the
	// built-in words alone, said instead when an override fails on data
	// its check did not have.
	site, builtin *texttemplate.Template
	// onError hears of such a failure (see OnError).
	onError func(name string, err error)
	mu      sync.Mutex
	failed  map[string]bool
}

// messageFuncs are the helpers messages may use: Funcs.
func messageFuncs() texttemplate.FuncMap {
	f := Funcs()
	return texttemplate.FuncMap(f)
}

// LoadMessages reads messages/*.txt of fsys: the built-in files, then the
// override directory's on top. A block an override defines that no
// built-in file has is a problem (a misspelt name would otherwise never
// be said).
func LoadMessages(fsys fs.FS) (*Messages, error) {
	base, top := layers(fsys)
	builtin := texttemplate.New("messages").Funcs(messageFuncs()).Option("missingkey=error")
	names, err := fs.Glob(base, "messages/*.txt")
	if err != nil {
		return nil, err
	}
	if _, err := ParseText(builtin, base, names...); err != nil {
		return nil, err
	}
	m := &Messages{builtin: builtin, site: builtin, failed: map[string]bool{}}
	if top == nil {
		return m, nil
	}
	overrides, err := fs.Glob(top, "messages/*.txt")
	if err != nil || len(overrides) == 0 {
		return m, err
	}
	known := m.Names()
	site, err := builtin.Clone()
	if err != nil {
		return nil, err
	}
	var p Problems
	for _, name := range overrides {
		one := texttemplate.New("check").Funcs(messageFuncs())
		if _, err := ParseText(one, fsys, name); err != nil {
			p.Add(err)
			continue
		}
		for _, t := range one.Templates() {
			if t.Name() != "check" && t.Name() != Origin(fsys, name) && !slices.Contains(known, t.Name()) {
				p = append(p, fmt.Sprintf("%s: defines %q, a message Herald never says (see the built-in %s)", Origin(fsys, name), t.Name(), name))
			}
		}
		if _, err := ParseText(site, fsys, name); err != nil {
			p.Add(err)
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	m.site = site
	return m, nil
}

// Names lists the messages, sorted.
func (m *Messages) Names() []string {
	var out []string
	for _, t := range m.builtin.Templates() {
		if n := t.Name(); n != "messages" && !strings.HasSuffix(n, ".txt") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Phrase says message prefix+key ("frequency."+"daily"), or key itself
// when there is no such message.
func (m *Messages) Phrase(prefix, key string) string {
	if !m.Has(prefix + key) {
		return key
	}
	return m.Say(prefix + key)
}

// Kind names what a subscription follows for people, from the messages
// "kind.*": "kind.topic" for "topic" and so on; a kind without a message
// of its own is said as "kind.department".
func (m *Messages) Kind(kind string) string {
	if !m.Has("kind." + kind) {
		kind = "department"
	}
	return m.Say("kind." + kind)
}

// Has reports whether message name exists.
func (m *Messages) Has(name string) bool { return m.builtin.Lookup(name) != nil }

// OnError sets who hears of a message that failed and was said in the
// built-in words instead. The failure is told once per message.
func (m *Messages) OnError(fn func(name string, err error)) { m.onError = fn }

// Data makes a message's named values from pairs: "Name", "Immigration",
// "Count", 3.
func Data(kv ...any) map[string]any {
	d := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, _ := kv[i].(string)
		d[k] = kv[i+1]
	}
	return d
}

// Say returns message name with the named values kv ("Name", "Immigration",
// ...). An override that fails on these values is reported (OnError) and
// the built-in words are said; a message Herald lacks is a bug, said as
// its name.
func (m *Messages) Say(name string, kv ...any) string {
	s, err := m.Check(name, kv...)
	if err == nil {
		return s
	}
	m.report(name, err)
	var b strings.Builder
	if err := m.builtin.ExecuteTemplate(&b, name, Data(kv...)); err != nil {
		return name
	}
	return b.String()
}

// Check says message name as Say does, but returns its error instead of
// falling back: for checking a message with sample values at start.
func (m *Messages) Check(name string, kv ...any) (string, error) {
	if m.site.Lookup(name) == nil {
		return "", fmt.Errorf("no message %q", name)
	}
	var b strings.Builder
	if err := m.site.ExecuteTemplate(&b, name, Data(kv...)); err != nil {
		return "", fmt.Errorf("%s (message %q)", Tidy(err), name)
	}
	return b.String(), nil
}

func (m *Messages) report(name string, err error) {
	m.mu.Lock()
	first := !m.failed[name]
	m.failed[name] = true
	m.mu.Unlock()
	if first && m.onError != nil {
		m.onError(name, err)
	}
}

// CheckSamples says every message of file (like "messages/email.txt"),
// each with its named values from samples (none when it has no entry),
// and returns every failure: so every message is checked once, and one
// that uses a value Herald does not give it fails.
func (m *Messages) CheckSamples(file string, samples map[string][]any) error {
	var p Problems
	for _, name := range m.namesOf(file) {
		if _, err := m.Check(name, samples[name]...); err != nil {
			p = append(p, err.Error())
		}
	}
	return p.Err()
}

// namesOf lists the messages the built-in file defines.
func (m *Messages) namesOf(file string) []string {
	one := texttemplate.New("one").Funcs(messageFuncs())
	if _, err := ParseText(one, embedded, path.Clean(file)); err != nil {
		return nil
	}
	var out []string
	for _, t := range one.Templates() {
		if n := t.Name(); n != "one" && n != file {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
