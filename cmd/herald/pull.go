package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"herald/feeds/netguard"
	"herald/feeds/pull"
)

func (a *app) pullConfig() pull.Config {
	return pull.Config{
		Concurrency: a.cfg.Pull.Concurrency,
		Timeout:     a.cfg.Pull.Timeout,
		MaxBody:     a.cfg.Pull.MaxBody,
		MaxBackoff:  a.cfg.Pull.MaxBackoff,
		AlertMaxAge: a.cfg.Alerts.MaxAge,
		Guard:       a.cfg.Pull.guard(),
		Version:     version,
	}
}

// guard is where pulls may connect; Validate has checked the networks.
func (p PullConfig) guard() netguard.Guard {
	g := netguard.Guard{AllowPrivate: p.AllowPrivate}
	for _, n := range p.AllowNetworks {
		if a, err := netguard.ParseAllowance(n); err == nil {
			g.Allow = append(g.Allow, a)
		}
	}
	return g
}

func runPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("pull", stderr)
	var names stringList
	fs.Var(&names, "source", "pull only the source with this `NAME` (repeatable)")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	a, err := openConfigured(ctx, *cfgFlag, stderr)
	if err != nil {
		return err
	}
	defer a.Close()
	for _, n := range names {
		if _, err := a.db.SourceByName(ctx, n); err != nil {
			return fmt.Errorf("no source named %q (see \"herald sources list\")", n)
		}
	}
	puller := pull.NewPuller(a.db, a.pullConfig(), nil)
	// A pull from the command line is an explicit request: it ignores
	// backoff, unlike the scheduled pulls of `serve`.
	reports, err := puller.Pull(ctx, pull.Request{Sources: names, Force: true})
	if err != nil {
		return err
	}
	if len(reports) == 0 {
		fmt.Fprintln(stdout, "no enabled sources to pull")
		return nil
	}
	if err := printPullTable(stdout, reports); err != nil {
		return err
	}
	for _, r := range reports {
		if r.Status == "failed" {
			return errFailed
		}
	}
	return nil
}

func printPullTable(w io.Writer, reports []pull.SourceReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSTATUS\tNEW\tUPDATED\tUNCHANGED\tTIME\tDETAIL")
	for _, r := range reports {
		detail := r.Err
		if detail == "" && r.Alerts > 0 {
			detail = fmt.Sprintf("%d to alert", r.Alerts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.Source, r.Status, r.New, r.Updated, r.Unchanged,
			r.Duration.Round(1e6), strings.ReplaceAll(detail, "\n", " "))
	}
	return tw.Flush()
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
