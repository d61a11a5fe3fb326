package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"herald/alerts/bounce/providers"
	"herald/feeds/netguard"
	"herald/store"
	"herald/web"
	"herald/web/admin"
)

// Config mirrors config.example.yaml. Unknown keys are an error.
type Config struct {
	Database     string         `yaml:"database"`
	BaseURL      string         `yaml:"base_url"`
	Listen       string         `yaml:"listen"`
	HSTSMaxAge   time.Duration  `yaml:"hsts_max_age"`
	Timezone     string         `yaml:"timezone"`
	TemplatesDir string         `yaml:"templates_dir"`
	Branding     BrandingConfig `yaml:"branding"`
	Log          LogConfig      `yaml:"log"`
	Schedule     ScheduleConfig `yaml:"schedule"`
	Pull         PullConfig     `yaml:"pull"`
	Feeds        FeedsConfig    `yaml:"feeds"`
	WebSub       WebSubConfig   `yaml:"websub"`
	Alerts       AlertsConfig   `yaml:"alerts"`
	Mail         *MailConfig    `yaml:"mail"`
	Bounces      BouncesConfig  `yaml:"bounces"`
	Secrets      SecretsConfig  `yaml:"secrets"`
	Admin        AdminConfig    `yaml:"admin"`
	Metrics      MetricsConfig  `yaml:"metrics"`

	Departments []DepartmentConfig `yaml:"departments"`
	Sources     []SourceConfig     `yaml:"sources"`
	Topics      []TopicConfig      `yaml:"topics"`

	// path is the file the config came from ("" for built-in defaults).
	path string
}

// BrandingConfig is how pages and emails show the organisation.
type BrandingConfig struct {
	Name string `yaml:"name"`
	// Logo is a PNG, JPEG or GIF file (embedded in emails) or an http(s)
	// URL (linked).
	Logo       string `yaml:"logo"`
	Colour     string `yaml:"colour"`
	Footer     string `yaml:"footer"`
	PrivacyURL string `yaml:"privacy_url"`
	// Contact is an email address or an http(s) URL.
	Contact string `yaml:"contact"`
}

// LogConfig chooses the log format and level.
type LogConfig struct {
	Format string `yaml:"format"` // auto | text | json
	Level  string `yaml:"level"`  // debug | info | warn | error
}

// ScheduleConfig holds cron specs, read in Config.Timezone.
type ScheduleConfig struct {
	Pull         string `yaml:"pull"`
	DailyDigest  string `yaml:"daily_digest"`
	WeeklyDigest string `yaml:"weekly_digest"`
}

// PullConfig tunes fetching of publishers' feeds.
type PullConfig struct {
	Concurrency int           `yaml:"concurrency"`
	Timeout     time.Duration `yaml:"timeout"`
	MaxBody     int64         `yaml:"max_body"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
	// AllowPrivate lets pulls reach loopback, private and other non-public
	// addresses, for publishers on the operator's own network.
	AllowPrivate bool `yaml:"allow_private"`
	// AllowNetworks lets pulls reach these non-public networks or
	// address:port pairs only.
	AllowNetworks []string `yaml:"allow_networks"`
}

// FeedsConfig tunes the feeds Herald publishes.
type FeedsConfig struct {
	Entries     int    `yaml:"entries"`
	MaxAge      int    `yaml:"max_age"`
	Language    string `yaml:"language"`
	Title       string `yaml:"title"`
	ArchiveSize int    `yaml:"archive_size"`
	EntryLink   string `yaml:"entry_link"` // herald | original
	Icon        string `yaml:"icon"`
}

// WebSubConfig configures the built-in hub.
type WebSubConfig struct {
	LeaseDefault          time.Duration `yaml:"lease_default"`
	LeaseMax              time.Duration `yaml:"lease_max"`
	AllowPrivateCallbacks bool          `yaml:"allow_private_callbacks"`
	ExternalHubs          []string      `yaml:"external_hubs"`
}

// AlertsConfig tunes subscriptions and alerting.
type AlertsConfig struct {
	MaxAge           time.Duration `yaml:"max_age"`
	ConfirmPerHour   int           `yaml:"confirm_per_hour"`
	ConfirmPerIPHour int           `yaml:"confirm_per_ip_hour"`
	DigestMaxEntries int           `yaml:"digest_max_entries"`
	EraseAfter       time.Duration `yaml:"erase_after"`
	PurgeBodiesAfter time.Duration `yaml:"purge_bodies_after"`
}

// MailConfig configures delivery. Without it, messages go to ./outbox as
// .eml files.
type MailConfig struct {
	From          string        `yaml:"from"`
	ReplyTo       string        `yaml:"reply_to"`
	ListID        string        `yaml:"list_id"`
	Transport     string        `yaml:"transport"` // smtp | file
	Dir           string        `yaml:"dir"`
	SMTP          SMTPConfig    `yaml:"smtp"`
	Concurrency   int           `yaml:"concurrency"`
	Rate          float64       `yaml:"rate"`
	RetryMaxAge   time.Duration `yaml:"retry_max_age"`
	SuppressAfter int           `yaml:"suppress_after"`
	DKIM          DKIMConfig    `yaml:"dkim"`
}

// BouncesConfig configures the bounce addresses and how reports that
// arrive at them are taken in and counted.
type BouncesConfig struct {
	// Domain is the domain of the envelope sender every message leaves
	// with (bounces+TOKEN@domain); empty uses mail.from's domain.
	Domain string `yaml:"domain"`
	// Listen, when set (like ":2525"), starts an SMTP receiver there
	// with herald serve, for the relay to deliver reports to.
	Listen string `yaml:"listen"`
	// MaxMessageBytes is the largest report accepted.
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	// PerClientPerMinute caps the messages one client may send the
	// receiver in a minute.
	PerClientPerMinute int `yaml:"per_client_per_minute"`
	// TransientLimit temporary failures within TransientWindow suppress
	// an address.
	TransientLimit  int           `yaml:"transient_limit"`
	TransientWindow time.Duration `yaml:"transient_window"`
	// Webhooks are the relays' reports by HTTP.
	Webhooks WebhooksConfig `yaml:"webhooks"`
}

// SMTPConfig is the relay Herald hands messages to.
type SMTPConfig struct {
	Host     string        `yaml:"host"`
	Port     int           `yaml:"port"`
	Username string        `yaml:"username"`
	Password Secret        `yaml:"password"`
	TLS      string        `yaml:"tls"` // starttls | tls | none
	Timeout  time.Duration `yaml:"timeout"`
}

// DKIMConfig enables DKIM signing when Domain and a key are set.
type DKIMConfig struct {
	Domain     string `yaml:"domain"`
	Selector   string `yaml:"selector"`
	PrivateKey Secret `yaml:"private_key"`
	KeyFile    string `yaml:"key_file"`
}

// SecretsConfig holds keys for signing tokens.
type SecretsConfig struct {
	TokenKeys []Secret `yaml:"token_keys"`
}

// MetricsConfig places the Prometheus metrics.
type MetricsConfig struct {
	// Listen is a separate address serving /metrics without a token;
	// empty serves them only on the site, to admin bearer tokens.
	Listen string `yaml:"listen"`
}

// WebhooksConfig configures the relays' webhooks, each at POST
// /webhooks/{provider}; a provider left out answers 404.
type WebhooksConfig struct {
	// Window is how far a signed timestamp (SNS, SendGrid, Mailgun) may be
	// from now before the request is refused as a replay.
	Window   time.Duration          `yaml:"window"`
	SES      *SESWebhookConfig      `yaml:"ses"`
	Postmark *PostmarkWebhookConfig `yaml:"postmark"`
	SendGrid *SendGridWebhookConfig `yaml:"sendgrid"`
	Mailgun  *MailgunWebhookConfig  `yaml:"mailgun"`
}

// SESWebhookConfig accepts Amazon SES notifications from these SNS topics.
type SESWebhookConfig struct {
	TopicARNs []string `yaml:"topic_arns"`
}

// PostmarkWebhookConfig is the basic auth Postmark's webhook URL carries.
type PostmarkWebhookConfig struct {
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
}

// SendGridWebhookConfig is the verification key of SendGrid's signed
// Event Webhook.
type SendGridWebhookConfig struct {
	PublicKey Secret `yaml:"public_key"`
}

// MailgunWebhookConfig is Mailgun's HTTP webhook signing key.
type MailgunWebhookConfig struct {
	SigningKey Secret `yaml:"signing_key"`
}

// providers builds the configured webhook providers, with every problem
// found in their settings.
func (w WebhooksConfig) providers() ([]web.WebhookProvider, []string) {
	var out []web.WebhookProvider
	var problems []string
	add := func(p web.WebhookProvider, err error) {
		if err != nil {
			problems = append(problems, "bounces.webhooks."+err.Error())
			return
		}
		out = append(out, p)
	}
	if c := w.SES; c != nil {
		add(providers.NewSES(providers.SESConfig{TopicARNs: c.TopicARNs, Window: w.Window}))
	}
	if c := w.Postmark; c != nil {
		if n := len(c.Password.Value()); n > 0 && n < 16 {
			problems = append(problems, "bounces.webhooks.postmark: password must be at least 16 characters")
		} else {
			add(providers.NewPostmark(providers.PostmarkConfig{Username: c.Username, Password: c.Password.Value()}))
		}
	}
	if c := w.SendGrid; c != nil {
		add(providers.NewSendGrid(providers.SendGridConfig{PublicKey: c.PublicKey.Value(), Window: w.Window}))
	}
	if c := w.Mailgun; c != nil {
		add(providers.NewMailgun(providers.MailgunConfig{SigningKey: c.SigningKey.Value(), Window: w.Window}))
	}
	return out, problems
}

// AdminConfig holds bearer tokens for the admin API and console.
type AdminConfig struct {
	Tokens []Secret `yaml:"tokens"`
}

// DepartmentConfig provisions a department.
type DepartmentConfig struct {
	Slug string `yaml:"slug"`
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
}

// SourceConfig provisions a source.
type SourceConfig struct {
	Name       string `yaml:"name"`
	URL        string `yaml:"url"`
	Department string `yaml:"department"`
	Format     string `yaml:"format"`
	Disabled   bool   `yaml:"disabled"`
}

func (d DepartmentConfig) input() admin.DepartmentInput {
	return admin.DepartmentInput{Slug: d.Slug, Name: d.Name, URL: d.URL}
}

func (s SourceConfig) input() admin.SourceInput {
	enabled := !s.Disabled
	return admin.SourceInput{Name: s.Name, URL: s.URL, Department: s.Department, Format: s.Format, Enabled: &enabled}
}

// TopicConfig provisions a topic.
type TopicConfig struct {
	Slug        string     `yaml:"slug"`
	Title       string     `yaml:"title"`
	Description string     `yaml:"description"`
	Match       store.Rule `yaml:"match"`
	Retired     bool       `yaml:"retired"`
}

func (t TopicConfig) input() admin.TopicInput {
	return admin.TopicInput{Slug: t.Slug, Title: t.Title, Description: t.Description, Match: t.Match}
}

// Secret is a string that may be written as ${ENV_NAME} and never prints.
type Secret string

var envRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// UnmarshalYAML expands a ${NAME} reference from the environment.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var raw string
	if err := n.Decode(&raw); err != nil {
		return err
	}
	if m := envRef.FindStringSubmatch(strings.TrimSpace(raw)); m != nil {
		raw = os.Getenv(m[1])
	}
	*s = Secret(raw)
	return nil
}

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

func defaultConfig() Config {
	return Config{
		Database: "./herald.db",
		BaseURL:  "http://127.0.0.1:8080",
		Listen:   "127.0.0.1:8080",
		// A year, as HSTS preload lists ask.
		HSTSMaxAge: 365 * 24 * time.Hour,
		Timezone:   "Europe/London",
		Log:        LogConfig{Format: "auto", Level: "info"},
		Schedule:   ScheduleConfig{Pull: "*/5 * * * *", DailyDigest: "30 8 * * *", WeeklyDigest: "30 8 * * 6"},
		Pull:       PullConfig{Concurrency: 4, Timeout: 30 * time.Second, MaxBody: 10 << 20, MaxBackoff: 6 * time.Hour},
		Feeds:      FeedsConfig{Entries: 50, MaxAge: 300, Language: "en", Title: "Herald", EntryLink: "herald"},
		WebSub:     WebSubConfig{LeaseDefault: 10 * 24 * time.Hour, LeaseMax: 30 * 24 * time.Hour},
		Bounces: BouncesConfig{MaxMessageBytes: 10 << 20, PerClientPerMinute: 60, TransientLimit: 3,
			TransientWindow: 14 * 24 * time.Hour, Webhooks: WebhooksConfig{Window: providers.DefaultWindow}},
		Alerts: AlertsConfig{MaxAge: 48 * time.Hour, ConfirmPerHour: 5, ConfirmPerIPHour: 20, DigestMaxEntries: 200,
			EraseAfter: 28 * 24 * time.Hour, PurgeBodiesAfter: 7 * 24 * time.Hour},
	}
}

func defaultMail() MailConfig {
	return MailConfig{
		From: "Herald <alerts@localhost>", Transport: "file", Dir: "./outbox",
		SMTP:        SMTPConfig{Port: 587, TLS: "starttls", Timeout: 30 * time.Second},
		Concurrency: 4, Rate: 50, RetryMaxAge: 48 * time.Hour, SuppressAfter: 3,
	}
}

// loadConfig reads a config file over the defaults. An empty path gives the
// defaults alone.
func loadConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path == "" {
		return cfg, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err = parseConfig(raw)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.path = path
	return cfg, nil
}

// bounceDomainRE is a host name with at least one dot.
var bounceDomainRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)

var yamlLine = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// parseConfig decodes YAML strictly over the defaults.
func parseConfig(raw []byte) (Config, error) {
	cfg := defaultConfig()
	if len(bytes.TrimSpace(raw)) == 0 {
		return cfg, nil
	}
	// Mail defaults apply only when a mail section is present.
	var probe struct {
		Mail yaml.Node `yaml:"mail"`
	}
	if err := yaml.Unmarshal(raw, &probe); err == nil && probe.Mail.Kind != 0 {
		m := defaultMail()
		cfg.Mail = &m
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var msgs []string
			for _, e := range te.Errors {
				if m := yamlLine.FindStringSubmatch(e); m != nil {
					msgs = append(msgs, fmt.Sprintf("line %s: unknown key %q", m[1], m[2]))
				} else {
					msgs = append(msgs, strings.TrimPrefix(e, "yaml: "))
				}
			}
			return Config{}, errors.New(strings.Join(msgs, "; "))
		}
		return Config{}, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return cfg, nil
}

// Validate fills in what follows from other keys (feeds.archive_size,
// when unset) and reports every problem with the config at once.
func (c *Config) Validate() error {
	if c.Feeds.ArchiveSize == 0 {
		// Unset: archive pages as long as the current feed, which the
		// not-yet-full page then always fits in.
		c.Feeds.ArchiveSize = c.Feeds.Entries
	}
	var p []string
	add := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if err := store.CheckDatabase(c.Database); err != nil {
		add("database: %v", err)
	}
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("base_url: %q must be an absolute http(s) URL", c.BaseURL)
	} else if u.RawQuery != "" || u.Fragment != "" {
		add("base_url: %q must not have a query or fragment", c.BaseURL)
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q must be host:port", c.Listen)
	}
	if d := c.TemplatesDir; d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			add("templates_dir: %q is not a directory", d)
		}
	}
	for _, msg := range c.Branding.problems() {
		add("branding.%s", msg)
	}
	if c.HSTSMaxAge < 0 {
		add("hsts_max_age: must not be negative (0 sends no Strict-Transport-Security)")
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			add("metrics.listen: %q must be host:port", c.Metrics.Listen)
		} else if c.Metrics.Listen == c.Listen {
			add("metrics.listen: %q is the site's own listen address; give the metrics one of their own", c.Metrics.Listen)
		}
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		add("timezone: %q is not a known time zone", c.Timezone)
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		add("log.format: %q must be auto, text or json", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level: %q must be debug, info, warn or error", c.Log.Level)
	}
	for name, spec := range map[string]string{"schedule.pull": c.Schedule.Pull, "schedule.daily_digest": c.Schedule.DailyDigest, "schedule.weekly_digest": c.Schedule.WeeklyDigest} {
		if _, err := cron.ParseStandard(spec); err != nil {
			add("%s: %q is not a cron spec: %v", name, spec, err)
		}
	}
	if c.Pull.Concurrency < 1 {
		add("pull.concurrency: must be at least 1")
	}
	if c.Pull.Timeout <= 0 {
		add("pull.timeout: must be positive, like 30s")
	}
	if c.Pull.MaxBody < 1024 {
		add("pull.max_body: must be at least 1024 bytes")
	}
	if c.Pull.MaxBackoff < time.Minute {
		add("pull.max_backoff: must be at least 1m")
	}
	for _, n := range c.Pull.AllowNetworks {
		if _, err := netguard.ParseAllowance(n); err != nil {
			add("pull.allow_networks: %v", err)
		}
	}
	if c.Feeds.Entries < 1 || c.Feeds.Entries > 1000 {
		add("feeds.entries: must be between 1 and 1000")
	}
	if c.Feeds.MaxAge < 0 {
		add("feeds.max_age: must not be negative")
	}
	if least := min(10, c.Feeds.Entries); c.Feeds.ArchiveSize < least {
		add("feeds.archive_size: must be at least %d", least)
	} else if c.Feeds.ArchiveSize > c.Feeds.Entries+1 {
		add("feeds.archive_size: must be at most feeds.entries + 1, so the releases not yet on a full archive page fit in the current feed")
	}
	if c.Feeds.EntryLink != "herald" && c.Feeds.EntryLink != "original" {
		add("feeds.entry_link: must be herald or original")
	}
	if i := c.Feeds.Icon; i != "" && !(strings.HasPrefix(i, "/") && !strings.HasPrefix(i, "//")) {
		if u, err := url.Parse(i); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("feeds.icon: must be an absolute http(s) URL or a path starting with /")
		}
	}
	if c.WebSub.LeaseDefault <= 0 || c.WebSub.LeaseMax < c.WebSub.LeaseDefault {
		add("websub: lease_default must be positive and not above lease_max")
	}
	for _, h := range c.WebSub.ExternalHubs {
		if msg := store.CheckFeedURL(h); msg != "" {
			add("websub.external_hubs: %s", msg)
		}
	}
	if c.Alerts.MaxAge <= 0 {
		add("alerts.max_age: must be positive, like 48h")
	}
	if c.Alerts.ConfirmPerHour < 1 || c.Alerts.ConfirmPerIPHour < 1 {
		add("alerts: confirm_per_hour and confirm_per_ip_hour must be at least 1")
	}
	if c.Mail != nil {
		m := c.Mail
		if strings.TrimSpace(m.From) == "" {
			add("mail.from: is empty")
		}
		switch m.Transport {
		case "file":
			if m.Dir == "" {
				add("mail.dir: is empty but transport is file")
			}
		case "smtp":
			if m.SMTP.Host == "" {
				add("mail.smtp.host: is empty but transport is smtp")
			}
			if m.SMTP.Port < 1 || m.SMTP.Port > 65535 {
				add("mail.smtp.port: %d is not a port", m.SMTP.Port)
			}
			switch m.SMTP.TLS {
			case "starttls", "tls", "none":
			default:
				add("mail.smtp.tls: %q must be starttls, tls or none", m.SMTP.TLS)
			}
		default:
			add("mail.transport: %q must be smtp or file", m.Transport)
		}
		if m.Concurrency < 1 {
			add("mail.concurrency: must be at least 1")
		}
		if m.Rate <= 0 {
			add("mail.rate: must be positive")
		}
		if m.SuppressAfter < 1 {
			add("mail.suppress_after: must be at least 1")
		}
		if m.DKIM.Domain != "" && m.DKIM.PrivateKey == "" && m.DKIM.KeyFile == "" {
			add("mail.dkim: domain is set but neither private_key nor key_file is")
		}
	}
	if b := c.Bounces; b.Listen != "" {
		if _, _, err := net.SplitHostPort(b.Listen); err != nil {
			add("bounces.listen: %q must be host:port, like :2525", b.Listen)
		} else if b.Listen == c.Listen || b.Listen == c.Metrics.Listen {
			add("bounces.listen: %q is taken by another listener", b.Listen)
		}
	}
	if d := c.Bounces.Domain; d != "" && !bounceDomainRE.MatchString(d) {
		add("bounces.domain: %q is not a domain like bounces.news.example.org", d)
	}
	if c.Bounces.MaxMessageBytes < 64<<10 {
		add("bounces.max_message_bytes: must be at least 65536")
	}
	if c.Bounces.PerClientPerMinute < 1 {
		add("bounces.per_client_per_minute: must be at least 1")
	}
	if c.Bounces.TransientLimit < 1 {
		add("bounces.transient_limit: must be at least 1")
	}
	if c.Bounces.TransientWindow < time.Hour {
		add("bounces.transient_window: must be at least 1h, like 336h")
	}
	for i, k := range c.Secrets.TokenKeys {
		if len(k) < 16 {
			add("secrets.token_keys[%d]: must be at least 16 characters (is the environment variable set?)", i)
		}
	}
	if w := c.Bounces.Webhooks.Window; w < 30*time.Second || w > 24*time.Hour {
		add("bounces.webhooks.window: must be between 30s and 24h, like 5m")
	} else {
		_, problems := c.Bounces.Webhooks.providers()
		p = append(p, problems...)
	}
	for i, k := range c.Admin.Tokens {
		if len(k) < 16 {
			add("admin.tokens[%d]: must be at least 16 characters (is the environment variable set?)", i)
		}
	}

	// Departments, sources and topics get the admin operations' own
	// checks, against the departments declared here.
	inputProblems := func(prefix string, err error, in any) {
		var fe admin.FieldErrors
		if errors.As(err, &fe) {
			for _, msg := range problems(fe, in, nil) {
				add("%s: %s", prefix, msg)
			}
		}
	}
	var deptSlugs []string
	depts := map[string]bool{}
	for i, d := range c.Departments {
		in := d.input()
		_, err := admin.CheckDepartment(in)
		inputProblems(fmt.Sprintf("departments[%d]", i), err, in)
		if depts[d.Slug] {
			add("departments[%d]: slug %q is listed twice", i, d.Slug)
		}
		depts[d.Slug] = true
		deptSlugs = append(deptSlugs, d.Slug)
	}
	names := map[string]bool{}
	for i, s := range c.Sources {
		in := s.input()
		_, err := admin.CheckSource(in, deptSlugs)
		inputProblems(fmt.Sprintf("sources[%d] (%s)", i, s.Name), err, in)
		if names[s.Name] {
			add("sources[%d]: name %q is listed twice", i, s.Name)
		}
		names[s.Name] = true
	}
	topics := map[string]bool{}
	for i, t := range c.Topics {
		in := t.input()
		_, err := admin.CheckTopic(in, deptSlugs)
		inputProblems(fmt.Sprintf("topics[%d] (%s)", i, t.Slug), err, in)
		if topics[t.Slug] {
			add("topics[%d]: slug %q is listed twice", i, t.Slug)
		}
		topics[t.Slug] = true
	}
	if len(p) == 0 {
		return nil
	}
	return &ConfigError{Problems: p}
}

// ConfigError lists every problem found in a config.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return "config: " + e.Problems[0]
	}
	return fmt.Sprintf("config has %d problems:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// Location returns the configured time zone (validated already).
func (c *Config) Location() *time.Location {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}
