package alerts

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/store"
	"herald/templates"
)

// TemplateError is an email template that failed on one message's data.
// Every template is checked against sample data of each kind before
// Herald starts (CheckTemplates), so this comes from data the samples did
// not have; the message is not composed and whatever caused it stays to
// be done (an immediate alert stays pending, a digest period unfinished).
type TemplateError struct {
	// Template is the email template: "confirm", "immediate", "digest"...
	Template string
	Err      error
}

func (e *TemplateError) Error() string {
	return "alerts: email template " + e.Template + ": " + templates.Tidy(e.Err)
}

func (e *TemplateError) Unwrap() error { return e.Err }

// templateHealth reports template failures once, not once per subscriber
// or per run: a log line the first time a template fails in a way it had
// not, another when it works again, and the gauge
// herald_email_template_failing in between.
type templateHealth struct {
	log     *slog.Logger
	errors  *prometheus.CounterVec
	failing *prometheus.GaugeVec
	// count is how many templates are failing, so the hot path of a
	// message that rendered costs one atomic load.
	count atomic.Int32
	mu    sync.Mutex
	// told holds, per failing template, the failures already logged.
	told map[string]map[string]bool
}

func newTemplateHealth(log *slog.Logger, reg prometheus.Registerer) (*templateHealth, error) {
	h := &templateHealth{log: log, told: map[string]map[string]bool{},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_email_template_errors_total",
			Help: "Runs of immediate alerts, digests or requests stopped by an email template failing on their data, by template.",
		}, []string{"template"}),
		failing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "herald_email_template_failing",
			Help: "1 while an email template fails on the data of the messages it should compose, by template.",
		}, []string{"template"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{h.errors, h.failing} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("alerts: register metrics: %w", err)
			}
		}
	}
	for _, name := range mailNames {
		h.errors.WithLabelValues(name)
		h.failing.WithLabelValues(name)
	}
	return h, nil
}

// failed reports err if it is a TemplateError, and says whether it was.
func (h *templateHealth) failed(err error) bool {
	var te *TemplateError
	if !errors.As(err, &te) {
		return false
	}
	h.errors.WithLabelValues(te.Template).Inc()
	msg := templates.Tidy(te.Err)
	h.mu.Lock()
	told := h.told[te.Template]
	if told == nil {
		told = map[string]bool{}
		h.told[te.Template] = told
		h.count.Add(1)
	}
	first := !told[msg]
	told[msg] = true
	h.mu.Unlock()
	h.failing.WithLabelValues(te.Template).Set(1)
	if first {
		h.log.Error("email template failing: its messages wait until it is fixed",
			slog.String("template", te.Template), slog.String("error", msg))
	}
	return true
}

// worked records that template name rendered what it had to: a request's
// message, or every message of an alert or digest run.
func (h *templateHealth) worked(name string) {
	if h.count.Load() == 0 {
		return
	}
	h.mu.Lock()
	_, was := h.told[name]
	delete(h.told, name)
	if was {
		h.count.Add(-1)
	}
	h.mu.Unlock()
	if was {
		h.failing.WithLabelValues(name).Set(0)
		h.log.Info("email template works again", slog.String("template", name))
	}
}

// EmailKinds are the kinds of email Herald sends, as the console and the
// API name them for previews and tests.
func EmailKinds() []string {
	return []string{"confirm", "welcome", "immediate", "daily-digest", "weekly-digest", "manage", "address-change"}
}

// sample is one message composed from sample data, for checking the
// templates and for previews.
type sample struct {
	kind string
	// template is the email template it is made with.
	template string
	// variant tells samples of one kind apart in a problem.
	variant string
	compose func(s *Service, d sampleData) (store.OutboxMessage, error)
}

// sampleData is what samples are made of: made up, or (for previews)
// real releases and a real topic or department.
type sampleData struct {
	now          time.Time
	to           string
	subscription store.Subscription
	releases     []store.AlertRelease
}

// madeUpData is the sample data checks and previews start from.
func madeUpData(now time.Time) sampleData {
	sub := store.Subscription{Kind: "topic", Slug: "human-trafficking", Name: "Human trafficking and modern slavery",
		TopicID: 1, Frequency: store.FrequencyDaily, Status: store.SubscriptionPending}
	rels := []store.AlertRelease{
		{Release: store.Release{ID: 1, DepartmentID: 1, DepartmentSlug: "home-office", DepartmentName: "Home Office",
			Title: "UK and Romania pledge to tackle human trafficking", Link: "https://www.gov.uk/government/news/uk-and-romania-pledge",
			Summary: "<p>The Home Secretary met her Romanian counterpart to agree joint work against organised immigration crime.</p>" +
				"<p>Both countries will share intelligence and train officers together.</p>",
			Published: now.Add(-3 * time.Hour), AlertVersion: 1}, TopicIDs: []int64{1}},
		{Release: store.Release{ID: 2, DepartmentID: 1, DepartmentSlug: "home-office", DepartmentName: "Home Office",
			Title: "Modern slavery statutory guidance updated", Link: "",
			Summary:   "<p>The guidance for frontline staff has been revised.</p>",
			Published: now.Add(-5 * time.Hour), AlertVersion: 2}, TopicIDs: []int64{1}},
	}
	return sampleData{now: now, to: "name@example.org", subscription: sub, releases: rels}
}

// samples are the messages every template is checked with, each kind at
// least once, and in its variants where a template has a choice to make
// (a changed frequency, an updated release, a digest with more than it
// lists, one with several subscriptions).
func samples() []sample {
	confirm := func(s *Service, d sampleData) (store.OutboxMessage, error) {
		return s.composeConfirm(store.Subscriber{Address: d.to}, d.subscription, d.now)
	}
	welcome := func(replaced bool) func(*Service, sampleData) (store.OutboxMessage, error) {
		return func(s *Service, d sampleData) (store.OutboxMessage, error) {
			res := Confirmation{Subscriber: store.Subscriber{Address: d.to}, Subscription: d.subscription}
			if replaced {
				old := d.subscription
				old.Frequency = store.FrequencyWeekly
				if d.subscription.Frequency == store.FrequencyWeekly {
					old.Frequency = store.FrequencyDaily
				}
				res.Replaced = &old
			}
			return s.composeWelcome(res, d.now)
		}
	}
	immediate := func(i int, subs int) func(*Service, sampleData) (store.OutboxMessage, error) {
		return func(s *Service, d sampleData) (store.OutboxMessage, error) {
			r := d.releases[min(i, len(d.releases)-1)]
			rc := store.Recipient{Address: d.to}
			for j := range subs {
				sub := d.subscription
				if j > 0 {
					sub = store.Subscription{Kind: "department", Slug: r.DepartmentSlug, Name: r.DepartmentName, DepartmentID: r.DepartmentID, ID: 1}
				}
				rc.Subscriptions = append(rc.Subscriptions, sub)
			}
			return s.composeImmediate(r, s.mailReleaseOf(r.Release, fanSummaryLimit), rc, d.now)
		}
	}
	digest := func(frequency string, limit int, subs int) func(*Service, sampleData) (store.OutboxMessage, error) {
		return func(s *Service, d sampleData) (store.OutboxMessage, error) {
			return s.sampleDigest(d, frequency, limit, subs)
		}
	}
	manage := func(s *Service, d sampleData) (store.OutboxMessage, error) {
		return s.composeManage(store.Subscriber{Address: d.to}, d.now)
	}
	addressChange := func(s *Service, d sampleData) (store.OutboxMessage, error) {
		return s.composeAddressChange(store.Subscriber{Address: "old.name@example.org", PendingAddress: d.to, PendingNonce: 1}, d.now)
	}
	return []sample{
		{"confirm", "confirm", "", confirm},
		{"welcome", "welcome", "", welcome(false)},
		{"welcome", "welcome", "with a changed frequency", welcome(true)},
		{"immediate", "immediate", "", immediate(0, 1)},
		{"immediate", "immediate", "of an updated release with no original link, for two subscriptions", immediate(1, 2)},
		{"daily-digest", "digest", "", digest(store.FrequencyDaily, 0, 1)},
		{"daily-digest", "digest", "listing fewer than it has, for two subscriptions", digest(store.FrequencyDaily, 1, 2)},
		{"weekly-digest", "digest", "", digest(store.FrequencyWeekly, 0, 1)},
		{"manage", "manage", "", manage},
		{"address-change", "address_change", "", addressChange},
	}
}

// sampleDigest composes a digest of d's releases for d's subscription
// (and, with subs 2, their department too), listing at most limit.
func (s *Service) sampleDigest(d sampleData, frequency string, limit, subs int) (store.OutboxMessage, error) {
	idx, err := s.newDigestIndex(d.releases)
	if err != nil {
		return store.OutboxMessage{}, err
	}
	sub := d.subscription
	sub.Frequency = frequency
	rc := store.Recipient{Address: d.to, Subscriptions: []store.Subscription{sub}}
	if subs > 1 && len(d.releases) > 0 {
		r := d.releases[len(d.releases)-1]
		rc.Subscriptions = append(rc.Subscriptions, store.Subscription{ID: 1, Kind: "department", Slug: r.DepartmentSlug,
			Name: r.DepartmentName, DepartmentID: r.DepartmentID, Frequency: frequency})
	}
	end := d.now.Truncate(time.Hour)
	start := end.Add(-24 * time.Hour)
	if frequency == store.FrequencyWeekly {
		start = end.Add(-7 * 24 * time.Hour)
	}
	if limit <= 0 {
		limit = s.cfg.DigestMaxEntries
	}
	m, ok, err := s.composeDigestOf(frequency, digestPeriod{Start: start, End: end}, idx, rc, d.now, limit)
	if err == nil && !ok {
		err = errors.New("nothing in the period to list")
	}
	return m, err
}

// checkMail parses the email templates and messages of cfg and composes
// every sample made with those that parsed, returning the mailer and
// every problem, each told once (naming the first sample it came from).
func checkMail(cfg Config, keys Keys) (*subMailer, error) {
	mail, parsed, p := parseMail(cfg.TemplatesFS, cfg.Brand)
	if mail.msgs == nil {
		return nil, p.Err()
	}
	s := &Service{cfg: cfg, keys: keys, mail: mail, log: slog.New(slog.DiscardHandler)}
	d := madeUpData(time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC))
	told := map[string]bool{}
	for _, smp := range samples() {
		if !parsed[smp.template] {
			continue
		}
		_, err := smp.compose(s, d)
		if err == nil {
			continue
		}
		var te *TemplateError
		if errors.As(err, &te) {
			err = te.Err
		}
		if msg := templates.Tidy(err); !told[msg] {
			told[msg] = true
			what := smp.kind
			if smp.variant != "" {
				what += ", " + smp.variant
			}
			p = append(p, fmt.Sprintf("%s (with the sample %s email)", msg, what))
		}
	}
	p.Add(mail.msgs.CheckSamples("messages/email.txt", messageSamples()))
	if err := p.Err(); err != nil {
		return nil, err
	}
	return mail, nil
}

// messageSamples are the named values each message of messages/email.txt
// is said with, to check it.
func messageSamples() map[string][]any {
	return map[string][]any{
		"kind.topic": nil, "kind.department": nil, "kind.search": nil,
		"search.name":           {"Query", "flood defences", "Department", "Environment Agency", "Topic", "Flooding", "Type", "Press release"},
		"frequency.immediately": nil, "frequency.daily": nil, "frequency.weekly": nil,
		"format.date": nil, "format.datetime": nil,
		"email.period.daily":             {"Day", "14 March 2025"},
		"email.period.weekly":            {"Day", "14 March 2025"},
		"email.subscription":             {"Name", "Immigration", "Kind", "topic"},
		"email.unsubscribe.cancel":       nil,
		"email.unsubscribe.one":          {"Name", "Immigration"},
		"email.unsubscribe.everything":   nil,
		"email.unsubscribe.frequency":    {"Frequency", "daily"},
		"email.why.immediate":            {"Subscriptions", []string{"Immigration (topic)", "Home Office (department)"}, "Site", "Herald"},
		"email.why.digest":               {"Site", "Herald", "FrequencyPhrase", "once a day"},
		"email.preheader.confirm":        {"Name", "Immigration"},
		"email.preheader.welcome":        {"Name", "Immigration"},
		"email.preheader.manage":         nil,
		"email.preheader.address_change": {"Site", "Herald"},
		"email.preheader.immediate":      {"Department", "Home Office", "Title", "A release"},
		"email.preheader.digest":         {"Count", 3},
		"email.test.subject":             {"Subject", "Your daily digest"},
	}
}

// CheckTemplates parses the email templates and messages of cfg's
// TemplatesFS and composes a sample of every kind of email with them
// (confirm, welcome, immediate, daily and weekly digests, manage link,
// address change, and their variants), without a database: what
// herald check-config and the start of herald serve run, so a template
// that would fail on a subscriber's email fails first. Every problem is
// returned, each naming the file, the line and the field.
func CheckTemplates(cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	keys, err := NewKeys(strings.Repeat("sample-key-", 3))
	if err != nil {
		return err
	}
	_, err = checkMail(cfg, keys)
	return err
}
