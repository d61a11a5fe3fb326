// Package admin owns what an administrator can do to Herald: define and
// change departments, sources and topics, preview a topic's rule, and look
// up, export, erase, add and import subscribers. The admin JSON API, the
// admin console, the CLI and the provisioning of a config file at start
// all call it, so each input is checked once, by one rule, and refused
// with the same words wherever it was typed.
//
// Inputs are typed structs whose JSON names are the API's; a refused input
// is a FieldErrors naming each bad field. Reads that carry no rule (lists,
// look-ups by slug) stay with the store.
package admin

import (
	"fmt"
	"slices"
	"strings"

	"herald/feeds/rules"
	"herald/store"
)

// Service runs the admin operations against a store.
type Service struct {
	db *store.DB
	// rules compiles topic rules for tagging the archive and previews.
	rules rules.Topics
}

// New returns the admin operations over db.
func New(db *store.DB) *Service { return &Service{db: db} }

// FieldErrors names each bad field of an input and what is wrong with it.
// A key is the field's JSON path ("slug", "match.keywords[2]"); a message
// is worded to follow the field's name ("is required"), so the console
// shows "Slug is required.", the API returns it as it is, and the CLI puts
// the flag in front of it.
type FieldErrors map[string]string

// Error lists every problem on one line, fields in order.
func (fe FieldErrors) Error() string {
	parts := make([]string, 0, len(fe))
	for _, k := range fe.Fields() {
		parts = append(parts, k+": "+fe[k])
	}
	return "invalid input: " + strings.Join(parts, "; ")
}

// Fields returns the names of the bad fields, sorted, so every front end
// lists problems in the same order.
func (fe FieldErrors) Fields() []string {
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Add records a problem with field unless one is already recorded: the
// first problem found is the one to fix first.
func (fe FieldErrors) Add(field, format string, args ...any) {
	if _, ok := fe[field]; !ok {
		fe[field] = fmt.Sprintf(format, args...)
	}
}

// err returns fe as an error, or nil when there is no problem.
func (fe FieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	return fe
}

// LimitProblem is the problem of a listing's limit that is not a whole
// number from 1 to max.
func LimitProblem(max int) string { return fmt.Sprintf("must be from 1 to %d", max) }
