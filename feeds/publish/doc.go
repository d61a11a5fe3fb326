// Package publish makes Herald's own feeds from the archive: Atom, RSS and
// JSON documents per department and topic with their archive pages, the
// feed cache that serves them with conditional GET and gzip, search feeds,
// static export, and the WebSub hub that tells subscribers of changes.
package publish
