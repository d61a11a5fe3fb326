package web

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"herald/web/admin"
)

// The admin JSON API under /api/v1: each entity's handlers sit with its
// console pages (topics.go, sources.go, departments.go, subscribers.go,
// outbox.go) and call the admin package, so the API and the console take
// the same inputs and refuse the same things with the same words.

// apiJSON runs a create or update: it decodes the JSON body into In, calls
// do, and answers with what do returns: 201 with a Location when do names
// one (a create), else 200; errors go through apiFail.
func apiJSON[In any](s *Server, w http.ResponseWriter, r *http.Request, do func(in In) (out any, location string, err error)) {
	var in In
	if err := decodeJSON(r, &in); err != nil {
		s.apiFail(w, r, err)
		return
	}
	out, location, err := do(in)
	if err != nil {
		s.apiFail(w, r, err)
		return
	}
	status := http.StatusOK
	if location != "" {
		w.Header().Set("Location", s.abs(location))
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
}

// decodeJSON reads a JSON body into v, refusing unknown fields, and turns
// decoding problems into errors naming the field.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return errStatus(http.StatusUnsupportedMediaType, "api.body.not_json")
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var mbe *http.MaxBytesError
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case err == nil:
	case errors.As(err, &mbe):
		return err
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			return errStatus(http.StatusBadRequest, "api.body.not_object")
		}
		return admin.FieldErrors{field: "must be " + jsonKind(ute.Type.Kind().String())}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return admin.FieldErrors{name: "is not a field of this request"}
	case errors.Is(err, io.EOF):
		return errStatus(http.StatusBadRequest, "api.body.empty")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return errStatus(http.StatusBadRequest, "api.body.invalid")
	default:
		return errStatus(http.StatusBadRequest, "api.body.invalid")
	}
	if dec.More() {
		return errStatus(http.StatusBadRequest, "api.body.several")
	}
	return nil
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}
