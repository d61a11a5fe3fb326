// Package pull reads publishers' feeds into the store: fetching with
// conditional GET through the netguard rule, parsing Atom, RSS, JSON Feed
// and GOV.UK search results, sanitising and normalising the items, and
// storing them in one transaction per pull, tagged with their topics.
package pull
