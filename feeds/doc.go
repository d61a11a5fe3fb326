// Package feeds owns the two ends of Herald's syndication: pulling
// publishers' feeds (fetching with conditional GET, parsing Atom, RSS, JSON
// Feed and GOV.UK search results, sanitising, deduplicating and storing them
// with their topics) and producing Herald's own feeds from the archive.
package feeds
