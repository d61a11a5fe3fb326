package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"herald/alerts"
	"herald/feeds/pull"
	"herald/store"
	"herald/web"
	"herald/web/admin"
)

// app is what every command that touches the database starts from.
type app struct {
	cfg Config
	db  *store.DB
	log *slog.Logger
	reg *prometheus.Registry
	// keys are the token keys, once loaded (tokenKeys).
	keys *alerts.Keys
}

// loadValidConfig reads and validates the config named by the --config
// flag (or found by configPath).
func loadValidConfig(flagValue string) (Config, error) {
	cfg, err := loadConfig(configPath(flagValue))
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// openConfigured loads and validates the config named by the --config
// flag, then opens the app on it.
func openConfigured(ctx context.Context, cfgFlag string, stderr io.Writer) (*app, error) {
	cfg, err := loadValidConfig(cfgFlag)
	if err != nil {
		return nil, err
	}
	return openApp(ctx, cfg, stderr)
}

// openApp opens the store, gives it the plain text of releases stored
// before it kept any (so topics saved below match them fully), and
// provisions the departments, sources and topics of the config file.
func openApp(ctx context.Context, cfg Config, stderr io.Writer) (*app, error) {
	log := newLogger(cfg.Log, stderr)
	db, err := store.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	n, err := pull.BackfillPlainText(ctx, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		log.InfoContext(ctx, "indexed releases stored by an earlier version for topic matching and search", slog.Int("releases", n))
	}
	a := &app{cfg: cfg, db: db, log: log, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.provision(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func (a *app) Close() error { return a.db.Close() }

// provision creates or updates what the config file declares, through
// the admin operations (Validate has run their checks already). The store
// stays the source of truth: things added at run time are left alone.
func (a *app) provision(ctx context.Context) error {
	ops := admin.New(a.db)
	for _, d := range a.cfg.Departments {
		if _, err := ops.UpsertDepartment(ctx, d.input()); err != nil {
			return fmt.Errorf("config: department %q: %w", d.Slug, err)
		}
	}
	for _, s := range a.cfg.Sources {
		if _, err := ops.UpsertSource(ctx, s.input()); err != nil {
			return fmt.Errorf("config: source %q: %w", s.Name, err)
		}
	}
	for _, t := range a.cfg.Topics {
		if _, err := ops.UpsertTopic(ctx, t.input()); err != nil {
			return fmt.Errorf("config: topic %q: %w", t.Slug, err)
		}
		if t.Retired {
			if _, err := ops.RetireTopic(ctx, t.Slug); err != nil {
				return fmt.Errorf("config: topic %q: %w", t.Slug, err)
			}
		}
	}
	return nil
}

// newLogger builds the process logger: text on a terminal, JSON otherwise,
// unless the config says which.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	switch c.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	format := c.Format
	if format == "" || format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	// Lines logged with a request's context carry its request id.
	return slog.New(web.NewLogHandler(h))
}

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("migrate", stderr)
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	a, err := openConfigured(ctx, *cfgFlag, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	fmt.Fprintf(stdout, "database %s is up to date\n", store.Redact(a.cfg.Database))
	return nil
}

func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("check-config", stderr)
	offline := fs.Bool("offline", false, "check the file alone; do not connect to a PostgreSQL database")
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	path := configPath(*cfgFlag)
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	if path == "" {
		return usageError("no config file given and no herald.yaml here")
	}
	cfg, err := loadValidConfig(path)
	if err != nil {
		return err
	}
	if err := cfg.checkTemplates(); err != nil {
		return err
	}
	if !*offline {
		// A PostgreSQL database must answer, as it will have to at start.
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := store.Reach(rctx, cfg.Database); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}
