package publish

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
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

	"herald/feeds/netguard"
	"herald/store"
	"herald/templates"
	"herald/templates/text"
)

// Config says how Herald's own feeds look and are served. It mirrors
// the feeds and websub sections of the configuration file.
type Config struct {
	// BaseURL is the absolute http(s) URL Herald is reached at; every link
	// in a feed starts with it.
	BaseURL string
	// Entries is how many releases a current feed holds [50]: those not yet
	// on a full archive page, then the newest others by publication date;
	// all of them when there are fewer.
	Entries int
	// MaxAge is the Cache-Control max-age of a feed, in seconds [300].
	MaxAge int
	// Language is the feeds' language tag [en].
	Language string
	// Title names the site in feed titles and as the feeds' author [Herald].
	Title string
	// ArchiveSize is the number of releases on one archive page [50], at
	// most Entries+1 so that the releases not yet on a full page fit in the
	// current feed.
	ArchiveSize int
	// EntryLink is where an entry's link points: EntryLinkHerald (the
	// release's page on Herald) or EntryLinkOriginal (the publisher's
	// article) [herald]. The other one is carried too, wherever the
	// format has room.
	EntryLink string
	// Icon is the address of an image (absolute, or a path below BaseURL)
	// feeds show instead of Herald's own icons (/static/icon-64.png,
	// icon-512.png and logo.png).
	Icon   string
	WebSub WebSubConfig
	// TemplatesFS holds the messages feeds say (messages/feeds.txt), with
	// any overrides on top (templates.FS) [the built-in ones].
	TemplatesFS fs.FS
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
	if c.TemplatesFS == nil {
		c.TemplatesFS = templates.Embedded()
	}
	if c.EntryLink == "" {
		c.EntryLink = EntryLinkHerald
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
	TopicsRevision(ctx context.Context) (string, error)
	DirtyFeeds(ctx context.Context) ([]store.DirtyFeed, error)
	FeedReleases(ctx context.Context, key string, limit int) ([]store.Release, error)
	FeedReleasesAfter(ctx context.Context, key string, afterID int64, limit int) ([]store.Release, error)
	FeedReleasesThrough(ctx context.Context, key string, maxID int64, limit int) ([]store.Release, error)
	FeedReleaseHeads(ctx context.Context, key string, afterID int64, pageSize, limit int) (after, newest []store.Release, err error)
	ReleasesByID(ctx context.Context, ids []int64) ([]store.Release, error)
	FeedMembers(ctx context.Context, key string, maxID int64) (int, int64, error)
	FeedDocs(ctx context.Context, archiveBodies bool) ([]store.FeedDoc, error)
	FeedArchives(ctx context.Context) ([]store.FeedArchive, error)
	UpdateFeedCache(ctx context.Context, u store.FeedCacheUpdate) error
	FeedMeta(ctx context.Context, name string) (string, error)
	FeedGeneration(ctx context.Context) (int64, error)
	FeedDocsAt(ctx context.Context, paths []string) ([]store.FeedDoc, error)
	WatchFeedCache(ctx context.Context, since int64, every time.Duration, changed func(context.Context, store.FeedChange) error) error
	SetFeedMeta(ctx context.Context, name, value string) error
	AddWebSubRequest(ctx context.Context, r store.WebSubRequest) (store.WebSubRequest, error)
	ClaimWebSubRequests(ctx context.Context, limit int, lease time.Duration) ([]store.WebSubRequest, error)
	CompleteWebSubRequest(ctx context.Context, id int64) (bool, error)
	RetryWebSubRequest(ctx context.Context, id int64, errText string, retryAt time.Time) error
	QueueWebSubDeliveries(ctx context.Context, topics []string) (int, error)
	ClaimWebSubDeliveries(ctx context.Context, limit int, lease time.Duration) ([]store.WebSubDelivery, error)
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
	icons      renderIcons
	tagAuth    string // authority of entry ids, "" when ids are URLs
	hubURL     string
	maxAgeHdr  []string
	archiveHdr []string

	cache     cacheStore
	renderMu  sync.Mutex // one render at a time; guards the fields below
	archives  map[string]store.FeedArchive
	opmlSig   string
	deptNames string // department names the cache was rendered with
	// generation is the store's feed generation when the cache was
	// loaded: where Follow starts.
	generation int64
	// meta is what the last render knew of departments and topics, and
	// metaSig what it was read for (see loadMeta).
	meta    *renderMeta
	metaSig string
	// rendered is what the last render of each current feed left for the
	// next one to reuse, by feed key (see splice.go).
	rendered  map[string]*renderedFeed
	memo      renderMemo
	sanitizer *text.Sanitizer
	msgs      *templates.Messages
	untitled  string // the title of an entry whose release has none

	search   searchCache
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
	if cfg.ArchiveSize > cfg.Entries+1 {
		return nil, fmt.Errorf("feeds: archive pages of %d releases need current feeds of at least %d", cfg.ArchiveSize, cfg.ArchiveSize-1)
	}
	if cfg.EntryLink != EntryLinkHerald && cfg.EntryLink != EntryLinkOriginal {
		return nil, fmt.Errorf("feeds: entry link %q must be %q or %q", cfg.EntryLink, EntryLinkHerald, EntryLinkOriginal)
	}
	for _, h := range cfg.WebSub.ExternalHubs {
		if msg := store.CheckFeedURL(h); msg != "" {
			return nil, fmt.Errorf("feeds: external hub: %s", msg)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	msgs, err := templates.LoadMessages(cfg.TemplatesFS)
	if err != nil {
		return nil, fmt.Errorf("feeds: %w", err)
	}
	msgs.OnError(func(name string, err error) {
		log.Error("feeds: message failed: its built-in words were used", slog.String("message", name), slog.String("error", err.Error()))
	})
	p := &Publisher{
		msgs:       msgs,
		db:         db,
		cfg:        cfg,
		log:        log,
		Now:        time.Now,
		base:       strings.TrimSuffix(cfg.BaseURL, "/"),
		archives:   map[string]store.FeedArchive{},
		rendered:   map[string]*renderedFeed{},
		metrics:    newPublishMetrics(reg),
		maxAgeHdr:  []string{"public, max-age=" + strconv.Itoa(cfg.MaxAge)},
		archiveHdr: []string{"public, max-age=86400"},
		sanitizer:  text.NewSanitizer(),
	}
	p.untitled = msgs.Say("feed.untitled")
	p.icons, err = p.renderIconSet(cfg.Icon)
	if err != nil {
		return nil, err
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

// renderEpoch dates an empty "all" feed: a fixed time, never the clock.
var renderEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// renderVersion changes whenever the renderer's output changes for the same
// data, so a cache made by an older Herald is rendered again at start.
const renderVersion = "6"

// renderSignature names everything besides the data that shapes the bytes.
func (p *Publisher) renderSignature() string {
	return strings.Join([]string{renderVersion, p.base, strconv.Itoa(p.cfg.Entries), p.cfg.Language, p.cfg.Title,
		strconv.Itoa(p.cfg.ArchiveSize), strings.Join(p.cfg.WebSub.ExternalHubs, " "), p.cfg.EntryLink, p.cfg.Icon}, "\n")
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
	// Read before the documents: a change made while they load is then
	// reported to Follow, not lost.
	gen, err := p.db.FeedGeneration(ctx)
	if err != nil {
		return false, fmt.Errorf("feeds: load cache: %w", err)
	}
	p.generation = gen
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

// renderMeta is what a render knows about departments and topics. It is
// not changed once made.
type renderMeta struct {
	depts     map[string]store.Department
	topics    map[string]store.Topic
	deptList  []store.Department
	topicList []store.Topic
	// want holds the keys of every feed that should exist: "all", each
	// department's and each topic's, with the path of its Atom document.
	want map[string]string
}

func (p *Publisher) render(ctx context.Context, full bool) ([]string, error) {
	p.renderMu.Lock()
	defer p.renderMu.Unlock()
	start := time.Now()

	if full {
		// Everything from scratch: nothing is taken from earlier documents.
		p.archives = map[string]store.FeedArchive{}
		p.rendered = map[string]*renderedFeed{}
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
	want := meta.want
	todo := map[string]bool{}
	for k, atom := range want {
		if full || p.cache.get(atom) == nil {
			todo[k] = true
		}
	}
	var gone []string
	for _, d := range dirty {
		if _, ok := want[d.Key]; ok {
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
		for k := range want {
			todo[k] = true
		}
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
		if len(upd.Save)+len(upd.Remove)+len(upd.Archives)+len(upd.DropArchives)+len(upd.Clear) == 0 {
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
		next    *renderedFeed
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
					r.docs, r.arch, r.removed, r.next, r.err = p.renderKey(ctx, chunk[i], meta, full, p.rendered[chunk[i]])
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
			p.keepRendered(chunk[i], r.next, r.docs)
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
		delete(p.rendered, key)
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
			if _, ok := want[d.key]; d.kind == store.FeedKindArchive && !ok {
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

	// The dirty marks go in the transaction that saves the last documents.
	upd.Clear = dirty
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

// keepRendered records what the render of key, which wrote docs, left for
// the next one. A document that came out as the cache already holds it
// (the same ETag, a hash of the bytes) is kept as the cache's copy, so
// the two share their bytes.
func (p *Publisher) keepRendered(key string, next *renderedFeed, docs []store.FeedDoc) {
	if next == nil {
		delete(p.rendered, key)
		return
	}
	for _, d := range docs {
		if d.Kind != store.FeedKindCurrent {
			continue
		}
		if old := p.cache.get(d.Path); old != nil && old.etag == d.ETag && old.plain.body != nil {
			next.bodies[renderFormatIndex(d.Format)] = old.plain.body
		}
	}
	p.rendered[key] = next
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

// loadMeta reads the departments and, when the store's topics revision
// moved since the last render, the topics (1,000 of them cost more than
// the rest of rendering one release). What it made of them is kept for as
// long as the departments and the revision stay the same.
func (p *Publisher) loadMeta(ctx context.Context) (renderMeta, error) {
	depts, err := p.db.Departments(ctx)
	if err != nil {
		return renderMeta{}, fmt.Errorf("feeds: render: %w", err)
	}
	rev, err := p.db.TopicsRevision(ctx)
	if err != nil {
		return renderMeta{}, fmt.Errorf("feeds: render: %w", err)
	}
	var b strings.Builder
	b.WriteString(rev)
	for _, d := range depts {
		b.WriteString("\n" + d.Slug + "\x00" + d.Name + "\x00" + store.FormatTime(d.CreatedAt))
	}
	sig := b.String()
	if rev != "" && p.meta != nil && sig == p.metaSig {
		return *p.meta, nil
	}
	// The topics are read after the revision: a change in between is
	// read now and again at the next render, never missed.
	topics, err := p.db.FeedTopics(ctx)
	if err != nil {
		return renderMeta{}, fmt.Errorf("feeds: render: %w", err)
	}
	m := renderMeta{depts: map[string]store.Department{}, topics: map[string]store.Topic{}, deptList: depts, topicList: topics,
		want: map[string]string{"all": renderKeyPath("all") + ".atom"}}
	for _, d := range depts {
		m.depts[d.Slug] = d
		key := "department:" + d.Slug
		m.want[key] = renderKeyPath(key) + ".atom"
	}
	for _, t := range topics {
		m.topics[t.Slug] = t
		key := "topic:" + t.Slug
		m.want[key] = renderKeyPath(key) + ".atom"
	}
	p.meta, p.metaSig = &m, sig
	return m, nil
}
