// Package feeds holds the two ends of Herald's syndication, each in its
// own package: pull (fetching publishers' feeds through the netguard rule,
// parsing, sanitising, normalising and storing them with their topics) and
// publish (rendering Herald's own Atom, RSS and JSON feeds from the
// archive, caching and serving them, the WebSub hub). The two share
// nothing but the store; netguard is the private-address rule of both.
package feeds
