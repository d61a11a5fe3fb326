package templates

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	texttemplate "text/template"
	"unicode/utf8"
)

// Problems are every problem found in a set of templates, each on one
// line that names the file (and the line, when there is one).
type Problems []string

func (p Problems) Error() string {
	if len(p) == 1 {
		return p[0]
	}
	return fmt.Sprintf("%d template problems:\n  %s", len(p), strings.Join(p, "\n  "))
}

// Err returns p as an error, or nil when there is no problem.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return p
}

// Add records err's problems: each of a Problems, or err as one line.
func (p *Problems) Add(err error) {
	var ps Problems
	if errors.As(err, &ps) {
		*p = append(*p, ps...)
		return
	}
	if err != nil {
		*p = append(*p, Tidy(err))
	}
}

// read returns file name of fsys, refusing text that is not UTF-8 with the
// line of the first bad byte.
func read(fsys fs.FS, name string) (string, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", Origin(fsys, name), errors.Unwrap(err))
	}
	if !utf8.Valid(b) {
		bad := 0
		for bad < len(b) {
			r, n := utf8.DecodeRune(b[bad:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			bad += n
		}
		line := bytes.Count(b[:bad], []byte("\n")) + 1
		return "", fmt.Errorf("%s:%d: is not valid UTF-8 text (save the file as UTF-8)", Origin(fsys, name), line)
	}
	return string(b), nil
}

// ParseText parses files of fsys into t, each under its Origin, so that
// every error, at parse or at execution, names the file a person would
// open.
func ParseText(t *texttemplate.Template, fsys fs.FS, files ...string) (*texttemplate.Template, error) {
	return t, parseFiles(fsys, files, func(name, src string) error {
		_, err := t.New(name).Parse(src)
		return err
	})
}

// ParseHTML is ParseText for html/template.
func ParseHTML(t *htmltemplate.Template, fsys fs.FS, files ...string) (*htmltemplate.Template, error) {
	return t, parseFiles(fsys, files, func(name, src string) error {
		_, err := t.New(name).Parse(src)
		return err
	})
}

// parseFiles reads each file and hands it to parse under its Origin.
func parseFiles(fsys fs.FS, files []string, parse func(name, src string) error) error {
	for _, name := range files {
		src, err := read(fsys, name)
		if err != nil {
			return err
		}
		if err := parse(Origin(fsys, name), src); err != nil {
			return errors.New(Tidy(err))
		}
	}
	return nil
}

// Lookup is what ParseText and ParseHTML return: either kind of template.
type Lookup interface{ DefinedTemplates() string }

// Require checks that a parsed set defines each block, naming file (the
// file that should have) when one is missing.
func Require(t Lookup, fsys fs.FS, file string, blocks ...string) error {
	var p Problems
	defined := t.DefinedTemplates()
	for _, b := range blocks {
		if !strings.Contains(defined, `"`+b+`"`) {
			p = append(p, fmt.Sprintf("%s: defines no %q block, which Herald needs ({{define %q}}...{{end}})", Origin(fsys, file), b, b))
		}
	}
	return p.Err()
}

// Tidy makes a template error one line without the package's prefix:
// "/etc/herald/templates/email/confirm.txt:3:14: executing "content" at
// <.Nope>: can't evaluate field Nope in type *alerts.mailData".
func Tidy(err error) string {
	s := strings.TrimPrefix(err.Error(), "template: ")
	s = strings.TrimPrefix(s, "html/template:")
	return strings.Join(strings.Fields(s), " ")
}
