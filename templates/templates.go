// Package templates holds Herald's embedded page and email templates and
// static assets. A site may override any file by putting one with the same
// path in a directory named in the config; nothing else lives here.
package templates

import (
	"embed"
	"errors"
	"io/fs"
	"os"
)

//go:embed pages email static
var embedded embed.FS

// FS returns the templates: files in overrideDir (if not empty) win over the
// embedded ones with the same path.
func FS(overrideDir string) fs.FS {
	if overrideDir == "" {
		return embedded
	}
	return overlay{top: os.DirFS(overrideDir), base: embedded}
}

// Embedded returns the built-in templates only.
func Embedded() fs.FS { return embedded }

type overlay struct{ top, base fs.FS }

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
