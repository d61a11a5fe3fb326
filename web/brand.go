package web

import (
	"bytes"
	"net/http"
	"time"
)

// brandCSS answers /brand.css, the brand colour as the style sheet's
// accent: pages link it only when the colour is not Herald's own, and no
// page carries an inline style.
func (s *Server) brandCSS(w http.ResponseWriter, r *http.Request) {
	c := s.cfg.Brand.Colour
	css := ":root{--accent:" + c + "}\nheader.site{border-bottom-color:" + c + "}\n"
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	http.ServeContent(w, r, "brand.css", time.Time{}, bytes.NewReader([]byte(css)))
}

// brandLogo answers /brand/logo.EXT, the logo file of the config.
func (s *Server) brandLogo(w http.ResponseWriter, r *http.Request) {
	l := s.cfg.Logo
	if l == nil || r.PathValue("file") != "logo"+l.Ext() {
		s.notFound(w, r)
		return
	}
	w.Header().Set("Content-Type", l.Type)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, "logo"+l.Ext(), time.Time{}, bytes.NewReader(l.Data))
}
