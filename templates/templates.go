// Package templates holds Herald's embedded page and email templates,
// the words Herald says outside them (messages/), and static assets. A
// site may override any file by putting one with the same path in a
// directory named in the config; nothing else lives here. It also owns
// what every template is parsed and checked with: file names as a person
// finds them, the helper functions, the branding they show.
package templates

import (
	"embed"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

//go:embed pages email messages static
var embedded embed.FS

// FS returns the templates: files in overrideDir (if not empty) win over the
// embedded ones with the same path.
func FS(overrideDir string) fs.FS {
	if overrideDir == "" {
		return embedded
	}
	return overlay{top: os.DirFS(overrideDir), base: embedded, dir: overrideDir}
}

// Embedded returns the built-in templates only.
func Embedded() fs.FS { return embedded }

type overlay struct {
	top, base fs.FS
	// dir is the override directory, as configured.
	dir string
}

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.top.Open(name)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return o.base.Open(name)
}

// ReadDir merges both directories, so fs.Glob sees overrides and built-ins.
func (o overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	seen := map[string]bool{}
	var out []fs.DirEntry
	for _, f := range []fs.FS{o.top, o.base} {
		es, err := fs.ReadDir(f, name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		for _, e := range es {
			if !seen[e.Name()] {
				seen[e.Name()] = true
				out = append(out, e)
			}
		}
	}
	if len(out) == 0 {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	return out, nil
}

// Origin names file name of fsys as a person finds it: the path in the
// override directory when the file comes from there, else name itself
// (a built-in file).
func Origin(fsys fs.FS, name string) string {
	if o, ok := fsys.(overlay); ok && overridden(o, name) {
		return filepath.Join(o.dir, filepath.FromSlash(name))
	}
	return name
}

// Overridden reports whether file name of fsys comes from the override
// directory.
func Overridden(fsys fs.FS, name string) bool {
	o, ok := fsys.(overlay)
	return ok && overridden(o, name)
}

func overridden(o overlay, name string) bool {
	_, err := fs.Stat(o.top, name)
	return err == nil
}

// layers returns the built-in layer of fsys and its override layer (nil
// when there is none).
func layers(fsys fs.FS) (base, top fs.FS) {
	if o, ok := fsys.(overlay); ok {
		return o.base, o.top
	}
	return fsys, nil
}

// Strays lists the files of the override directory that replace nothing
// Herald reads: a template or message file with a name no built-in file
// has, usually a misspelt one, which would otherwise be ignored without a
// word. Files under static/ are the site's own and never strays.
func Strays(fsys fs.FS) ([]string, error) {
	o, ok := fsys.(overlay)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, dir := range []string{"pages", "email", "messages"} {
		es, err := fs.ReadDir(o.top, dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			name := dir + "/" + e.Name()
			if _, err := fs.Stat(o.base, name); err != nil {
				out = append(out, filepath.Join(o.dir, filepath.FromSlash(name)))
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
