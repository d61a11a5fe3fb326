package publish

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"herald/feeds/netguard"
	"herald/store"
	"herald/templates/text"
)

// Config says how Herald's own feeds look and are served. It mirrors
// the feeds and websub sections of the configuration file.
type Config struct {
	// BaseURL is the absolute http(s) URL Herald is reached at; every link
	// in a feed starts with it.
	BaseURL string
	// Entries is how many of the newest releases a feed holds [50].
	Entries int
	// MaxAge is the Cache-Control max-age of a feed, in seconds [300].
	MaxAge int
	// Language is the feeds' language tag [en].
	Language string
	// Title names the site in feed titles and as the feeds' author [Herald].
	Title string
	// ArchiveSize is the number of releases on one archive page [50].
	ArchiveSize int
	WebSub      WebSubConfig
}

// WebSubConfig configures the built-in WebSub hub.
type WebSubConfig struct {
	// LeaseDefault is granted when a subscriber asks for no lease [10 days].
	LeaseDefault time.Duration
	// LeaseMax caps the lease a subscriber may ask for [30 days].
	LeaseMax time.Duration
	// Callbacks says where subscribers' callbacks may be reached: by
	// default only public addresses, the rule pulls follow too.
	Callbacks netguard.Guard
	// ExternalHubs are pinged (hub.mode=publish) when a feed changes, and
	// advertised beside the built-in hub.
	ExternalHubs []string
}

func (c Config) withDefaults() Config {
	if c.Entries <= 0 {
		c.Entries = 50
	}
	if c.MaxAge < 0 {
		c.MaxAge = 0
	} else if c.MaxAge == 0 {
		c.MaxAge = 300
	}
	if c.Language == "" {
		c.Language = "en"
	}
	if c.Title == "" {
		c.Title = "Herald"
	}
	if c.ArchiveSize <= 0 {
		c.ArchiveSize = 50
	}
	if c.WebSub.LeaseDefault <= 0 {
		c.WebSub.LeaseDefault = 10 * 24 * time.Hour
	}
	if c.WebSub.LeaseMax < c.WebSub.LeaseDefault {
		c.WebSub.LeaseMax = max(30*24*time.Hour, c.WebSub.LeaseDefault)
	}
	return c
}

// Store is what the publisher needs from the store.
type Store interface {
	Departments(ctx context.Context) ([]store.Department, error)
	FeedTopics(ctx context.Context) ([]store.Topic, error)
	DirtyFeeds(ctx context.Context) ([]store.DirtyFeed, error)
	ClearDirtyFeed(ctx context.Context, d store.DirtyFeed) error
	FeedReleases(ctx context.Context, key string, limit int) ([]store.Release, error)
	FeedReleasesAfter(ctx context.Context, key string, afterID int64, limit int) ([]store.Release, error)
	FeedMembers(ctx context.Context, key string, maxID int64) (int, int64, error)
	FeedDocs(ctx context.Context, archiveBodies bool) ([]store.FeedDoc, error)
	FeedArchives(ctx context.Context) ([]store.FeedArchive, error)
	UpdateFeedCache(ctx context.Context, u store.FeedCacheUpdate) error
	FeedMeta(ctx context.Context, name string) (string, error)
	SetFeedMeta(ctx context.Context, name, value string) error
	AddWebSubRequest(ctx context.Context, r store.WebSubRequest) (store.WebSubRequest, error)
	DueWebSubRequests(ctx context.Context, limit int) ([]store.WebSubRequest, error)
	CompleteWebSubRequest(ctx context.Context, id int64) (bool, error)
	RetryWebSubRequest(ctx context.Context, id int64, errText string, retryAt time.Time) error
	QueueWebSubDeliveries(ctx context.Context, topics []string) (int, error)
	DueWebSubDeliveries(ctx context.Context, limit int) ([]store.WebSubDelivery, error)
	FinishWebSubDelivery(ctx context.Context, d store.WebSubDelivery, errText string, retryAt time.Time) error
	RemoveWebSubSubscription(ctx context.Context, id int64) error
	PurgeExpiredWebSub(ctx context.Context) (int, error)
	NextWebSubWork(ctx context.Context) (time.Time, bool, error)
}

// Publisher renders Herald's feeds into the feed cache, serves them, and
// runs the WebSub hub that pushes them. It is safe for concurrent use.
type Publisher struct {
	db  Store
	cfg Config
	log *slog.Logger
	// Now is the clock that dates changed documents (Last-Modified); tests
	// replace it.
	Now func() time.Time

	base       string // BaseURL without a trailing slash
	tagAuth    string // authority of entry ids, "" when ids are URLs
	hubURL     string
	maxAgeHdr  []string
	archiveHdr []string

	cache     cacheStore
	renderMu  sync.Mutex // one render at a time; guards the fields below
	archives  map[string]store.FeedArchive
	opmlSig   string
	deptNames string // department names the cache was rendered with
	memo      renderMemo
	sanitizer *text.Sanitizer

	metrics  *publishMetrics
	hub      hubState
	hubLimit hubRateLimit
}

// NewPublisher returns a publisher over db. reg, if not nil, receives its
// metrics; log receives what the hub worker has to say.
func NewPublisher(db Store, cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Publisher, error) {
	cfg = cfg.withDefaults()
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("feeds: base URL %q must be an absolute http(s) URL without query or fragment", cfg.BaseURL)
	}
	for _, h := range cfg.WebSub.ExternalHubs {
		if msg := store.CheckFeedURL(h); msg != "" {
			return nil, fmt.Errorf("feeds: external hub: %s", msg)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Publisher{
		db:         db,
		cfg:        cfg,
		log:        log,
		Now:        time.Now,
		base:       strings.TrimSuffix(cfg.BaseURL, "/"),
		archives:   map[string]store.FeedArchive{},
		metrics:    newPublishMetrics(reg),
		maxAgeHdr:  []string{"public, max-age=" + strconv.Itoa(cfg.MaxAge)},
		archiveHdr: []string{"public, max-age=86400"},
		sanitizer:  text.NewSanitizer(),
	}
	if host := strings.ToLower(u.Hostname()); renderTagHost.MatchString(host) {
		p.tagAuth = host
	}
	p.hubURL = p.base + "/websub"
	p.cache.docs = map[string]*cacheDoc{}
	p.hub.init(p)
	return p, nil
}

var renderTagHost = regexp.MustCompile(`^[a-z0-9.-]+$`)

// Config returns the configuration in force, defaults filled in.
func (p *Publisher) Config() Config { return p.cfg }

// FeedURL returns the absolute URL of a feed key ("all",
// "department:SLUG", "topic:SLUG") in a format ("atom", "rss", "json"),
// for autodiscovery links on pages.
func (p *Publisher) FeedURL(key, format string) string {
	return p.base + renderKeyPath(key) + "." + format
}

// HubURL returns the URL of the built-in WebSub hub.
func (p *Publisher) HubURL() string { return p.hubURL }

// renderFormats are the formats every current feed is rendered in.
var renderFormats = []string{"atom", "rss", "json"}

// renderKeyPath maps a feed key to its URL path without extension.
func renderKeyPath(key string) string {
	switch {
	case key == "all":
		return "/feeds/all"
	case strings.HasPrefix(key, "department:"):
		return "/feeds/departments/" + strings.TrimPrefix(key, "department:")
	case strings.HasPrefix(key, "topic:"):
		return "/feeds/topics/" + strings.TrimPrefix(key, "topic:")
	}
	return "/feeds/unknown"
}

func renderArchivePath(key string, page int) string {
	return renderKeyPath(key) + "/archive/" + strconv.Itoa(page) + ".atom"
}

// renderEpoch dates an empty "all" feed: a fixed time, never the clock.
var renderEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// renderVersion changes whenever the renderer's output changes for the same
// data, so a cache made by an older Herald is rendered again at start.
const renderVersion = "2"

// renderSignature names everything besides the data that shapes the bytes.
func (p *Publisher) renderSignature() string {
	return strings.Join([]string{renderVersion, p.base, strconv.Itoa(p.cfg.Entries), p.cfg.Language, p.cfg.Title,
		strconv.Itoa(p.cfg.ArchiveSize), strings.Join(p.cfg.WebSub.ExternalHubs, " ")}, "\n")
}

const renderSignatureMeta = "render_signature"

// Warm makes the feed cache ready to serve: it loads the persisted cache
// and renders everything when the cache is empty or was rendered with
// another configuration, or else only the feeds marked dirty since.
func (p *Publisher) Warm(ctx context.Context) error {
	usable, err := p.Load(ctx)
	if err != nil {
		return err
	}
	if usable {
		_, err = p.RenderDirty(ctx)
	} else {
		_, err = p.RenderAll(ctx)
	}
	return err
}

// Load reads the persisted feed cache into memory. usable is false when
// it is empty or was rendered with a different configuration; RenderAll
// then replaces it.
func (p *Publisher) Load(ctx context.Context) (usable bool, err error) {
	p.renderMu.Lock()
	defer p.renderMu.Unlock()
	docs, err := p.db.FeedDocs(ctx, false)
	if err != nil {
		return false, fmt.Errorf("feeds: load cache: %w", err)
	}
	archives, err := p.db.FeedArchives(ctx)
	if err != nil {
		return false, fmt.Errorf("feeds: load cache: %w", err)
	}
	sig, err := p.db.FeedMeta(ctx, renderSignatureMeta)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("feeds: load cache: %w", err)
	}
	names, err := p.db.FeedMeta(ctx, renderDeptNamesMeta)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("feeds: load cache: %w", err)
	}
	p.deptNames = names
	m := make(map[string]*cacheDoc, len(docs))
	for _, d := range docs {
		m[d.Path] = p.newCacheDoc(d)
	}
	p.cache.replace(m)
	for _, a := range archives {
		p.archives[a.Key] = a
	}
	return len(docs) > 0 && sig == p.renderSignature(), nil
}

// RenderAll renders every feed, every archive page and the OPML list from
// the store, as after a change of configuration.
func (p *Publisher) RenderAll(ctx context.Context) ([]string, error) {
	return p.render(ctx, true)
}

// RenderDirty renders the feeds whose content changed since they were last
// rendered (the store's dirty feed keys), plus any department or topic
// that has no feed yet, stores what changed in the feed cache and tells
// WebSub subscribers. It returns the keys whose documents changed.
func (p *Publisher) RenderDirty(ctx context.Context) ([]string, error) {
	return p.render(ctx, false)
}

// renderMeta is what a render knows about departments and topics.
type renderMeta struct {
	depts     map[string]store.Department
	topics    map[string]store.Topic
	deptList  []store.Department
	topicList []store.Topic
}

func (p *Publisher) render(ctx context.Context, full bool) ([]string, error) {
	p.renderMu.Lock()
	defer p.renderMu.Unlock()
	start := time.Now()

	if full {
		p.archives = map[string]store.FeedArchive{}
	}
	dirty, err := p.db.DirtyFeeds(ctx)
	if err != nil {
		return nil, fmt.Errorf("feeds: render: %w", err)
	}
	meta, err := p.loadMeta(ctx)
	if err != nil {
		return nil, err
	}
	// The keys to render: dirty ones, plus feeds that should exist and
	// don't (a new department or topic), or all of them.
	want := map[string]bool{"all": true}
	for slug := range meta.depts {
		want["department:"+slug] = true
	}
	for slug := range meta.topics {
		want["topic:"+slug] = true
	}
	todo := map[string]bool{}
	for k := range want {
		if full || p.cache.get(renderKeyPath(k)+".atom") == nil {
			todo[k] = true
		}
	}
	var gone []string
	for _, d := range dirty {
		if want[d.Key] {
			todo[d.Key] = true
		} else {
			gone = append(gone, d.Key)
		}
	}
	// A renamed department changes its feeds' titles and the author of its
	// releases wherever they appear, topic feeds included; the store does
	// not mark all of those, so a rename (rare) renders every feed.
	names := renderDeptNames(meta)
	if !full && p.deptNames != "" && names != p.deptNames {
		maps.Copy(todo, want)
	}
	keys := make([]string, 0, len(todo))
	for k := range todo {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	now := p.Now().UTC().Truncate(time.Second)
	var upd store.FeedCacheUpdate
	changedKeys := map[string]bool{}
	var changedDocs []*cacheDoc
	var changedURLs []string
	keep := func(key string, d store.FeedDoc) {
		old := p.cache.get(d.Path)
		if old != nil && old.etag == d.ETag {
			return
		}
		d.LastModified = now
		if old != nil && !old.lastModified.Before(now) {
			d.LastModified = old.lastModified.Add(time.Second)
		}
		upd.Save = append(upd.Save, d)
		cd := p.newCacheDoc(d)
		changedDocs = append(changedDocs, cd)
		changedKeys[key] = true
		if d.Kind == store.FeedKindCurrent {
			changedURLs = append(changedURLs, p.base+d.Path)
		}
	}
	// flush stores what was rendered so far and swaps it in; a full render
	// of a large archive flushes as it goes, so it never holds every page
	// in memory at once.
	flush := func() error {
		if len(upd.Save)+len(upd.Remove)+len(upd.Archives)+len(upd.DropArchives) == 0 {
			return nil
		}
		if err := p.db.UpdateFeedCache(ctx, upd); err != nil {
			return fmt.Errorf("feeds: render: %w", err)
		}
		p.cache.apply(changedDocs, upd.Remove)
		for _, a := range upd.Archives {
			p.archives[a.Key] = a
		}
		for _, k := range upd.DropArchives {
			delete(p.archives, k)
		}
		upd, changedDocs = store.FeedCacheUpdate{}, nil
		return nil
	}
	// Feeds render in parallel, a chunk at a time.
	type result struct {
		docs    []store.FeedDoc
		arch    store.FeedArchive
		removed []string
		err     error
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), 4))
	for chunk := range slices.Chunk(keys, 64) {
		results := make([]result, len(chunk))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(workers, len(chunk)) {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(chunk) || ctx.Err() != nil {
						return
					}
					r := &results[i]
					r.docs, r.arch, r.removed, r.err = p.renderKey(ctx, chunk[i], meta, full)
				}
			})
		}
		wg.Wait()
		for i, r := range results {
			if r.err != nil {
				return nil, r.err
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for _, d := range r.docs {
				keep(chunk[i], d)
			}
			upd.Archives = append(upd.Archives, r.arch)
			upd.Remove = append(upd.Remove, r.removed...)
		}
		if err := flush(); err != nil {
			return nil, err
		}
	}
	// Feeds of departments or topics that no longer exist.
	for _, key := range gone {
		for _, d := range p.cache.byKey(key) {
			upd.Remove = append(upd.Remove, d.path)
		}
		if _, ok := p.archives[key]; ok {
			upd.DropArchives = append(upd.DropArchives, key)
		}
		changedKeys[key] = true
	}
	if full {
		// Archive pages left from a bigger page size or a removed feed.
		for _, d := range p.cache.all() {
			if d.kind == store.FeedKindArchive && !want[d.key] {
				upd.Remove = append(upd.Remove, d.path)
			}
		}
	}
	if sig := renderOPMLSignature(meta); full || sig != p.opmlSig || p.cache.get(opmlPath) == nil {
		body, err := p.renderOPML(meta)
		if err != nil {
			return nil, err
		}
		d, err := renderDoc(opmlPath, "opml", store.FeedKindOPML, "opml", 0, body)
		if err != nil {
			return nil, err
		}
		keep("opml", d)
		p.opmlSig = sig
	}

	if err := flush(); err != nil {
		return nil, err
	}
	if full {
		if err := p.db.SetFeedMeta(ctx, renderSignatureMeta, p.renderSignature()); err != nil {
			return nil, fmt.Errorf("feeds: render: %w", err)
		}
	}
	if names != p.deptNames {
		if err := p.db.SetFeedMeta(ctx, renderDeptNamesMeta, names); err != nil {
			return nil, fmt.Errorf("feeds: render: %w", err)
		}
		p.deptNames = names
	}
	for _, d := range dirty {
		if err := p.db.ClearDirtyFeed(ctx, d); err != nil {
			return nil, fmt.Errorf("feeds: render: %w", err)
		}
	}
	p.metrics.rendered(len(keys), time.Since(start))

	if len(changedURLs) > 0 {
		p.hub.published(ctx, changedURLs)
	}
	out := make([]string, 0, len(changedKeys))
	for k := range changedKeys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

const renderDeptNamesMeta = "department_names"

// renderDeptNames lists every department's name, to notice renames.
func renderDeptNames(m renderMeta) string {
	var b strings.Builder
	for _, d := range m.deptList {
		b.WriteString(d.Slug + "=" + d.Name + "\n")
	}
	return b.String()
}

func (p *Publisher) loadMeta(ctx context.Context) (renderMeta, error) {
	depts, err := p.db.Departments(ctx)
	if err != nil {
		return renderMeta{}, fmt.Errorf("feeds: render: %w", err)
	}
	topics, err := p.db.FeedTopics(ctx)
	if err != nil {
		return renderMeta{}, fmt.Errorf("feeds: render: %w", err)
	}
	m := renderMeta{depts: map[string]store.Department{}, topics: map[string]store.Topic{}, deptList: depts, topicList: topics}
	for _, d := range depts {
		m.depts[d.Slug] = d
	}
	for _, t := range topics {
		m.topics[t.Slug] = t
	}
	return m, nil
}

// renderKey renders the current documents of one feed in every format and
// any archive pages it newly filled. It returns the documents, the feed's
// new archive state and the paths of archive pages that no longer exist.
func (p *Publisher) renderKey(ctx context.Context, key string, meta renderMeta, full bool) ([]store.FeedDoc, store.FeedArchive, []string, error) {
	f := p.renderHead(key, meta)
	pages, arch, tail, removed, err := p.archiveUpdate(ctx, key, f, full)
	if err != nil {
		return nil, store.FeedArchive{}, nil, err
	}
	docs := pages
	if f.ended.IsZero() {
		newest, err := p.db.FeedReleases(ctx, key, p.cfg.Entries)
		if err != nil {
			return nil, store.FeedArchive{}, nil, fmt.Errorf("feeds: render %s: %w", key, err)
		}
		f.entries = p.renderEntries(renderMergeTail(newest, tail), true)
	} else {
		f.entries = []renderEntry{p.renderEndEntry(key, f)}
	}
	f.updated = renderNewest(f.entries, f.fallback)
	if arch.Pages > 0 {
		f.prevArchive = p.base + renderArchivePath(key, arch.Pages)
	}
	for _, format := range renderFormats {
		var body []byte
		switch format {
		case "atom":
			body, err = p.renderAtom(f)
		case "rss":
			body, err = p.renderRSS(f)
		case "json":
			body, err = p.renderJSON(f)
		}
		if err != nil {
			return nil, store.FeedArchive{}, nil, fmt.Errorf("feeds: render %s as %s: %w", key, format, err)
		}
		d, err := renderDoc(renderKeyPath(key)+"."+format, key, store.FeedKindCurrent, format, 0, body)
		if err != nil {
			return nil, store.FeedArchive{}, nil, err
		}
		docs = append(docs, d)
	}
	return docs, arch, removed, nil
}

// renderNewest is the feed's updated time: its newest entry's, or the
// fallback for an empty feed. Never the clock.
func renderNewest(entries []renderEntry, fallback time.Time) time.Time {
	if len(entries) == 0 {
		return fallback
	}
	t := entries[0].updated
	for _, e := range entries[1:] {
		if e.updated.After(t) {
			t = e.updated
		}
	}
	return t
}

// renderMergeTail adds to the newest releases those not yet on a full
// archive page, so that the current feed and the archive together always
// hold every release.
func renderMergeTail(newest, tail []store.Release) []store.Release {
	if len(tail) == 0 {
		return newest
	}
	seen := make(map[int64]bool, len(newest))
	for _, r := range newest {
		seen[r.ID] = true
	}
	out := newest
	added := false
	for _, r := range tail {
		if !seen[r.ID] {
			out = append(out, r)
			added = true
		}
	}
	if added {
		slices.SortFunc(out, func(a, b store.Release) int {
			if c := b.Published.Compare(a.Published); c != 0 {
				return c
			}
			return cmp.Compare(b.ID, a.ID)
		})
	}
	return out
}

// renderFeed is one feed document about to be encoded.
type renderFeed struct {
	key      string
	id       string // feed id (tag URI or URL)
	title    string
	subtitle string
	htmlURL  string // the page the feed belongs to
	path     string // URL path without extension
	updated  time.Time
	fallback time.Time // updated of an empty feed
	ended    time.Time // a retired topic's end
	entries  []renderEntry

	// RFC 5005: a current feed's newest archive page; an archive page's
	// number, neighbours and current feed.
	prevArchive string
	page        int
	nextArchive string
	current     string

	// query is the encoded query string of a feed rendered on request (a
	// search); such a feed is not pushed, so it names no hub.
	query string
}

// renderSelf is the feed's own URL in format ext.
func (p *Publisher) renderSelf(f *renderFeed, ext string) string {
	if f.page > 0 {
		return p.base + renderArchivePath(f.key, f.page)
	}
	self := p.base + f.path + "." + ext
	if f.query != "" {
		self += "?" + f.query
	}
	return self
}

// renderHubs are the hubs a feed advertises: none for one rendered on
// request, which no hub is told about.
func (p *Publisher) renderHubs(f *renderFeed) []string {
	if f.query != "" || f.page > 0 {
		return nil
	}
	return p.hubs()
}

// SearchFeed describes a feed of search results, rendered on request.
type SearchFeed struct {
	Title    string
	Subtitle string
	// PageURL is the absolute URL of the results page.
	PageURL string
	// Query is the encoded query string of the search, without "?".
	Query string
}

// RenderSearch renders releases, newest first, as a search feed
// (/feeds/search.{ext}?Query) in format "atom", "rss" or "json", with the
// same entry ids, cleaning and validity as every other feed. It uses no
// cache and takes no lock, so it may run while feeds are being rendered.
func (p *Publisher) RenderSearch(format string, sf SearchFeed, rs []store.Release) ([]byte, error) {
	f := &renderFeed{
		key: "search", path: "/feeds/search", query: sf.Query, htmlURL: sf.PageURL,
		title: renderClean(sf.Title), subtitle: renderClean(sf.Subtitle), fallback: renderEpoch,
	}
	f.id = p.renderID("feed/search")
	if sf.Query != "" {
		f.id = p.base + "/feeds/search?" + sf.Query
	}
	f.entries = p.renderEntries(rs, true)
	f.updated = renderNewest(f.entries, f.fallback)
	switch format {
	case "atom":
		return p.renderAtom(f)
	case "rss":
		return p.renderRSS(f)
	case "json":
		return p.renderJSON(f)
	}
	return nil, fmt.Errorf("feeds: unknown format %q", format)
}

// renderEntry is one release as every format shows it.
type renderEntry struct {
	id          string
	title       string
	url         string // the release's page on Herald
	related     string // the original article
	author      string
	authorURL   string
	published   time.Time
	updated     time.Time
	categories  []string
	summaryHTML string
	bodyHTML    string
	summaryText string
}

func (p *Publisher) renderHead(key string, meta renderMeta) *renderFeed {
	f := &renderFeed{key: key, path: renderKeyPath(key), fallback: renderEpoch}
	switch {
	case key == "all":
		f.title = p.cfg.Title
		f.subtitle = "Every release published on " + p.cfg.Title
		f.htmlURL = p.base + "/"
	case strings.HasPrefix(key, "department:"):
		d := meta.depts[strings.TrimPrefix(key, "department:")]
		f.title = d.Name + " – " + p.cfg.Title
		f.subtitle = "Releases from " + d.Name
		f.htmlURL = p.base + "/departments/" + d.Slug
		f.fallback = d.CreatedAt.UTC().Truncate(time.Second)
	case strings.HasPrefix(key, "topic:"):
		t := meta.topics[strings.TrimPrefix(key, "topic:")]
		f.title = t.Title + " – " + p.cfg.Title
		f.subtitle = t.Description
		if strings.TrimSpace(f.subtitle) == "" {
			f.subtitle = "Releases about " + t.Title
		}
		f.htmlURL = p.base + "/topics/" + t.Slug
		f.fallback = t.CreatedAt.UTC().Truncate(time.Second)
		if t.Retired() {
			f.ended = t.RetiredAt.UTC().Truncate(time.Second)
			f.fallback = f.ended
		}
	}
	f.id = p.renderID("feed" + strings.TrimPrefix(f.path, "/feeds"))
	f.title, f.subtitle = renderClean(f.title), renderClean(f.subtitle)
	return f
}

// renderID makes a stable id: a tag URI on the base URL's host, or a URL
// below the base URL when the host cannot name a tag.
func (p *Publisher) renderID(specific string) string {
	if p.tagAuth != "" {
		return "tag:" + p.tagAuth + ",2026:" + specific
	}
	return p.base + "/" + specific
}

// renderEndEntry is the last entry of a retired topic's feed.
func (p *Publisher) renderEndEntry(key string, f *renderFeed) renderEntry {
	title := strings.TrimSuffix(f.title, " – "+renderClean(p.cfg.Title))
	msg := "The topic “" + title + "” was retired on " + f.ended.Format("2 January 2006") +
		". No further releases will be added to this feed."
	return renderEntry{
		id:          p.renderID("feed" + strings.TrimPrefix(f.path, "/feeds") + "/ended"),
		title:       "This feed has ended",
		url:         f.htmlURL,
		author:      renderClean(p.cfg.Title),
		authorURL:   p.base + "/",
		published:   f.ended,
		updated:     f.ended,
		summaryHTML: "<p>" + renderEscapeHTML(msg) + "</p>",
		summaryText: msg,
	}
}

// renderEntries turns releases into entries; withBody false leaves the
// full text out (archive pages carry summaries and links).
func (p *Publisher) renderEntries(rs []store.Release, withBody bool) []renderEntry {
	out := make([]renderEntry, 0, len(rs))
	for i := range rs {
		r := &rs[i]
		c := p.memo.get(r, p.sanitizer)
		e := renderEntry{
			id:          p.renderID("release/" + strconv.FormatInt(r.ID, 10)),
			title:       c.title,
			url:         p.base + "/releases/" + strconv.FormatInt(r.ID, 10),
			related:     c.related,
			author:      c.author,
			authorURL:   p.base + "/departments/" + r.DepartmentSlug,
			published:   r.Published.UTC().Truncate(time.Second),
			updated:     r.Updated.UTC().Truncate(time.Second),
			categories:  c.categories,
			summaryHTML: c.summaryHTML,
			summaryText: c.summaryText,
		}
		if withBody {
			e.bodyHTML = c.bodyHTML
		}
		if e.updated.Before(e.published) {
			e.updated = e.published
		}
		out = append(out, e)
	}
	return out
}

// renderDoc wraps rendered bytes as a cache document with its gzip copy
// and strong ETag.
func renderDoc(path, key, kind, format string, page int, body []byte) (store.FeedDoc, error) {
	gz, err := cacheGzip(body)
	if err != nil {
		return store.FeedDoc{}, fmt.Errorf("feeds: gzip %s: %w", path, err)
	}
	sum := sha256.Sum256(body)
	return store.FeedDoc{
		Path: path, Key: key, Kind: kind, Format: format, Page: page,
		Body: body, Size: len(body), Gzip: gz,
		ETag: `"` + hex.EncodeToString(sum[:16]) + `"`,
	}, nil
}

// renderContentTypes are the media types of each format.
var renderContentTypes = map[string]string{
	"atom": "application/atom+xml; charset=utf-8",
	"rss":  "application/rss+xml; charset=utf-8",
	"json": "application/feed+json; charset=utf-8",
	"opml": "text/x-opml; charset=utf-8",
}

// renderContentType returns the Content-Type of a format.
func renderContentType(format string) string {
	if ct, ok := renderContentTypes[format]; ok {
		return ct
	}
	return http.DetectContentType(nil)
}

// renderCached is what the renderer derives from one release's stored
// text, kept between renders: most renders show the same releases again.
type renderCached struct {
	hash, dept  string // what it was derived from
	title       string
	related     string
	author      string
	categories  []string
	summaryHTML string
	bodyHTML    string
	summaryText string
}

// renderMemo keeps renderCached values for recently rendered releases in
// two generations: when the newer one fills up, the older is dropped.
type renderMemo struct {
	mu       sync.Mutex
	cur, old map[int64]*renderCached
}

const renderMemoSize = 20000

func (m *renderMemo) get(r *store.Release, san *text.Sanitizer) *renderCached {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.cur[r.ID]; c != nil && c.hash == r.ContentHash && c.dept == r.DepartmentName {
		return c
	}
	c := m.old[r.ID]
	if c == nil || c.hash != r.ContentHash || c.dept != r.DepartmentName {
		c = renderDerive(r, san)
	}
	if m.cur == nil || len(m.cur) >= renderMemoSize {
		m.old, m.cur = m.cur, make(map[int64]*renderCached, 1024)
	}
	m.cur[r.ID] = c
	return c
}

// renderDerive cleans one release's strings for every format: characters
// XML 1.0 forbids are dropped, HTML is sanitised and reduced to the
// elements feed readers show, with absolute links.
func renderDerive(r *store.Release, san *text.Sanitizer) *renderCached {
	c := &renderCached{hash: r.ContentHash, dept: r.DepartmentName}
	c.title = strings.TrimSpace(renderClean(r.Title))
	if c.title == "" {
		c.title = "Untitled release"
	}
	c.author = strings.TrimSpace(renderClean(r.DepartmentName))
	// Relative references in the HTML are resolved against the original
	// article; without one they cannot be resolved and are dropped.
	var htmlBase *url.URL
	if u := renderURL(r.Link); u != nil {
		c.related = u.String()
		htmlBase = u
	}
	for _, cat := range r.Categories {
		if cat = strings.TrimSpace(renderClean(cat)); cat != "" && !slices.Contains(c.categories, cat) {
			c.categories = append(c.categories, cat)
		}
	}
	c.summaryHTML, c.summaryText = renderHTML(san, r.Summary, htmlBase)
	var bodyText string
	c.bodyHTML, bodyText = renderHTML(san, r.Body, htmlBase)
	// Every entry gets a summary, as readers and validators expect: the
	// start of the text when upstream gave none, or else a line saying who
	// published it when.
	if c.summaryHTML == "" {
		c.summaryText = text.Excerpt(bodyText, 280)
		if c.summaryText == "" {
			c.summaryText = c.author + " published this release on " + r.Published.UTC().Format("2 January 2006") + "."
		}
		c.summaryHTML = "<p>" + renderEscapeHTML(c.summaryText) + "</p>"
	}
	return c
}

// renderClean drops what XML 1.0 forbids or discourages (see text.Clean)
// and U+FFFD, the mark of an earlier decoding error, which validators flag.
func renderClean(s string) string {
	s = text.Clean(s)
	if strings.Contains(s, "\uFFFD") {
		s = strings.ReplaceAll(s, "\uFFFD", "")
	}
	return s
}

// renderEscapeHTML escapes text for HTML.
func renderEscapeHTML(s string) string { return html.EscapeString(s) }

// renderHTMLAllowed lists the elements feed readers show, with the
// attributes each may carry besides lang, dir and title. Anything else that
// the sanitising policy left is unwrapped (its text kept).
var renderHTMLAllowed = map[atom.Atom][]string{
	atom.A: {"href", "hreflang"}, atom.Abbr: nil, atom.Acronym: nil, atom.Address: nil, atom.Article: nil,
	atom.Aside: nil, atom.B: nil, atom.Bdi: nil, atom.Blockquote: {"cite"}, atom.Br: nil, atom.Caption: nil,
	atom.Cite: nil, atom.Code: nil, atom.Col: {"span"}, atom.Colgroup: {"span"}, atom.Dd: nil,
	atom.Del: {"cite", "datetime"}, atom.Details: nil, atom.Dfn: nil, atom.Div: nil, atom.Dl: nil, atom.Dt: nil,
	atom.Em: nil, atom.Figcaption: nil, atom.Figure: nil, atom.Footer: nil, atom.H1: nil, atom.H2: nil,
	atom.H3: nil, atom.H4: nil, atom.H5: nil, atom.H6: nil, atom.Header: nil, atom.Hr: nil, atom.I: nil,
	atom.Img: {"src", "alt", "width", "height"}, atom.Ins: {"cite", "datetime"}, atom.Kbd: nil, atom.Li: {"value"},
	atom.Main: nil, atom.Mark: nil, atom.Nav: nil, atom.Ol: {"start", "reversed", "type"}, atom.P: nil,
	atom.Pre: nil, atom.Q: {"cite"}, atom.Rp: nil, atom.Rt: nil, atom.Ruby: nil, atom.S: nil, atom.Samp: nil,
	atom.Section: nil, atom.Small: nil, atom.Span: nil, atom.Strike: nil, atom.Strong: nil, atom.Sub: nil,
	atom.Summary: nil, atom.Sup: nil, atom.Table: nil, atom.Tbody: nil,
	atom.Td: {"colspan", "rowspan", "headers"}, atom.Tfoot: nil, atom.Th: {"colspan", "rowspan", "headers", "scope", "abbr"},
	atom.Thead: nil, atom.Time: {"datetime"}, atom.Tr: nil, atom.Tt: nil, atom.U: nil, atom.Ul: nil,
	atom.Var: nil, atom.Wbr: nil,
}

var renderHTMLVoid = map[atom.Atom]bool{atom.Br: true, atom.Hr: true, atom.Img: true, atom.Wbr: true, atom.Col: true}

var renderHTMLNumeric = map[string]bool{"width": true, "height": true, "colspan": true, "rowspan": true,
	"span": true, "start": true, "value": true}

// renderHTML makes stored HTML fit for a feed: sanitised with the one
// policy (HTML came through it on the way in; this keeps a feed safe and
// valid whatever else reached the store), then parsed and written back so
// that it is well-formed, with only the elements and attributes feed
// readers show, links and images made absolute against base, and nothing
// XML 1.0 forbids. It also returns the fragment's text.
func renderHTML(san *text.Sanitizer, s string, base *url.URL) (frag, plain string) {
	s = renderClean(s)
	if strings.TrimSpace(s) == "" {
		return "", ""
	}
	s = san.Sanitize(s, base)
	ctx := &html.Node{Type: html.ElementNode, Data: "div", DataAtom: atom.Div}
	nodes, err := html.ParseFragment(strings.NewReader(s), ctx)
	if err != nil {
		return renderEscapeHTML(s), text.Plain(s)
	}
	var b strings.Builder
	for _, n := range nodes {
		renderHTMLNode(&b, n, base)
	}
	frag = strings.TrimSpace(b.String())
	plain = text.Plain(frag)
	if plain == "" && !strings.Contains(frag, "<img") {
		// Markup around nothing (<p> </p>, <div><br></div>) says nothing.
		return "", ""
	}
	return frag, plain
}

func renderHTMLNode(b *strings.Builder, n *html.Node, base *url.URL) {
	switch n.Type {
	case html.TextNode:
		b.WriteString(renderEscapeHTML(n.Data))
		return
	case html.ElementNode:
	default:
		return
	}
	attrs, ok := renderHTMLAllowed[n.DataAtom]
	if !ok || n.DataAtom == 0 || n.Namespace != "" {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			renderHTMLNode(b, c, base)
		}
		return
	}
	var kept []html.Attribute
	for _, a := range n.Attr {
		if a.Namespace != "" {
			continue
		}
		name := strings.ToLower(a.Key)
		if name != "lang" && name != "dir" && name != "title" && !slices.Contains(attrs, name) {
			continue
		}
		val := strings.TrimSpace(a.Val)
		switch {
		case name == "href" || name == "src" || name == "cite":
			val = renderAbsURL(val, base, name == "href")
			if val == "" {
				continue
			}
		case name == "dir":
			if val = strings.ToLower(val); val != "ltr" && val != "rtl" && val != "auto" {
				continue
			}
		case renderHTMLNumeric[name]:
			if _, err := strconv.ParseUint(val, 10, 32); err != nil {
				continue
			}
		}
		kept = append(kept, html.Attribute{Key: name, Val: val})
	}
	if n.DataAtom == atom.Img && !slices.ContainsFunc(kept, func(a html.Attribute) bool { return a.Key == "src" }) {
		return
	}
	b.WriteByte('<')
	b.WriteString(n.Data)
	for _, a := range kept {
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteString(`="`)
		b.WriteString(renderEscapeHTML(a.Val))
		b.WriteByte('"')
	}
	b.WriteByte('>')
	if renderHTMLVoid[n.DataAtom] {
		return
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		renderHTMLNode(b, c, base)
	}
	b.WriteString("</")
	b.WriteString(n.Data)
	b.WriteByte('>')
}

// renderURL parses an absolute http(s) URL and escapes what a URI may not
// carry literally (spaces, quotes, angle brackets, non-ASCII), or returns
// nil.
func renderURL(raw string) *url.URL {
	u, err := url.Parse(strings.TrimSpace(renderClean(raw)))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil
	}
	u.RawQuery = renderEscapeURI(u.RawQuery)
	return u
}

// renderEscapeURI percent-encodes every byte of s that RFC 3986 does not
// allow in a query, leaving existing escapes alone.
func renderEscapeURI(s string) string {
	const hexDigits = "0123456789ABCDEF"
	ok := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("-._~!$&'()*+,;=:@/?%", c) >= 0
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; ok(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// renderAbsURL resolves ref against base (which may be nil) and keeps it
// only when it is an http(s) URL (or, for links, mailto:).
func renderAbsURL(ref string, base *url.URL, link bool) string {
	var u *url.URL
	var err error
	if base != nil {
		u, err = base.Parse(ref)
	} else {
		u, err = url.Parse(ref)
	}
	if err != nil {
		return ""
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		if u = renderURL(u.String()); u == nil {
			return ""
		}
		return u.String()
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return ""
		}
	case "mailto":
		if !link {
			return ""
		}
	default:
		return ""
	}
	return u.String()
}
