package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"

	"herald/store"
	"herald/web/admin"
)

// subscriberLabels name a subscription's fields on the command line; the
// CSV file's columns have the fields' own names (importLabels).
var (
	subscriberLabels = map[string]string{"address": "email address", "topic": "--topic", "department": "--department", "search": "--search",
		"frequency": "--frequency"}
	importLabels = map[string]string{"address": "email address"}
)

func runSubscribers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runNoun(ctx, "subscribers", subscriberVerbs(isTerminal(stderr)),
		map[string]string{"remove": "erase", "list": "export"}, args, stdout, stderr, openStore)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// addressArg reads the one address a verb takes.
func addressArg(args []string) (string, error) {
	return oneArg(args, "email address")
}

// subscriberError words what an operation on one address refused or did
// not find.
func subscriberError(err error, address string) error {
	if errors.As(err, new(admin.FieldErrors)) {
		return inputError(err, admin.SubscriptionInput{Address: address}, subscriberLabels)
	}
	return notFound(err, "no subscriber with that address")
}

func subscriberVerbs(terminal bool) map[string]adminCommand {
	return map[string]adminCommand{
		"add": {usage: "--email ADDRESS (--topic SLUG | --department SLUG | --search 'q=WORDS&department=SLUG') [--frequency immediately|daily|weekly]: a confirmed subscription, as import makes",
			flags: func(fs *flag.FlagSet) adminRun {
				var in admin.SubscriptionInput
				fs.StringVar(&in.Address, "email", "", "the subscriber's `ADDRESS`")
				fs.StringVar(&in.Topic, "topic", "", "subscribe to the topic with this `SLUG`")
				fs.StringVar(&in.Department, "department", "", "subscribe to the department with this `SLUG`")
				fs.StringVar(&in.Search, "search", "", "subscribe to the stored search with these search page `PARAMETERS`")
				fs.StringVar(&in.Frequency, "frequency", "immediately", "`HOW` often: immediately, daily or weekly")
				return func(ctx context.Context, c adminEnv, args []string) error {
					if err := noArgs(args); err != nil {
						return err
					}
					created, err := c.ops.AddSubscription(ctx, in)
					if err != nil {
						return inputError(err, in, subscriberLabels)
					}
					if created {
						fmt.Fprintln(c.stdout, "added a new subscriber with one confirmed subscription")
					} else {
						fmt.Fprintln(c.stdout, "added the confirmed subscription to the existing subscriber")
					}
					return nil
				}
			}},
		"lookup": {usage: "ADDRESS", flags: noFlags(func(ctx context.Context, c adminEnv, args []string) error {
			a, err := addressArg(args)
			if err != nil {
				return err
			}
			info, err := c.ops.LookupSubscriber(ctx, a)
			if err != nil {
				return subscriberError(err, a)
			}
			return printJSON(c.stdout, info)
		})},
		"export": {usage: "[ADDRESS] [--out FILE]: with an address, everything stored about it as JSON; without, every confirmed subscription as CSV",
			flags: func(fs *flag.FlagSet) adminRun {
				out := fs.String("out", "", "write to `FILE` instead of standard output")
				return func(ctx context.Context, c adminEnv, args []string) error {
					w := c.stdout
					if *out != "" {
						f, err := os.Create(*out)
						if err != nil {
							return err
						}
						defer f.Close()
						w = f
					}
					if len(args) > 0 {
						a, err := addressArg(args)
						if err != nil {
							return err
						}
						data, err := c.ops.ExportSubscriber(ctx, a)
						if err != nil {
							return subscriberError(err, a)
						}
						_, err = w.Write(data)
						return err
					}
					n, err := exportSubscriptions(ctx, c.ops, w, newProgress(c.stderr, terminal, "exporting"))
					if err != nil {
						return err
					}
					if *out != "" {
						fmt.Fprintf(c.stdout, "exported %d subscriptions to %s\n", n, *out)
					}
					return nil
				}
			}},
		"import": {usage: "FILE.csv: columns email,topic,department,frequency,search (a header row names them)",
			flags: noFlags(func(ctx context.Context, c adminEnv, args []string) error {
				path, err := oneArg(args, "CSV file")
				if err != nil {
					return err
				}
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				defer f.Close()
				var size int64
				if st, err := f.Stat(); err == nil {
					size = st.Size()
				}
				res, err := importSubscriptions(ctx, c.ops, f, size, newProgress(c.stderr, terminal, "importing").counting("rows"), c.stderr)
				if err != nil {
					// What was stored stays: say how far it got, so that
					// the file (or its rest) can be imported again, which
					// adds only what is missing.
					if res.imported > 0 {
						fmt.Fprintf(c.stdout, "imported %d subscriptions (%d new subscribers) up to line %d, then stopped; %d rows skipped\n",
							res.imported, res.newSubscribers, res.through, res.skipped)
					}
					return err
				}
				fmt.Fprintf(c.stdout, "imported %d subscriptions (%d new subscribers); %d rows skipped\n", res.imported, res.newSubscribers, res.skipped)
				if res.skipped > 0 {
					return errFailed
				}
				return nil
			})},
		"erase": {usage: "ADDRESS (also: remove): delete the address and everything kept about it",
			flags: addressVerb((*admin.Service).EraseSubscriber, "erased the subscriber and everything stored about them")},
		"unsuppress": {usage: "ADDRESS: let Herald mail a suppressed address again",
			flags: addressVerb((*admin.Service).LiftSuppression, "suppression lifted")},
	}
}

// addressVerb is a verb that does one thing to one address and says so.
func addressVerb(do func(ops *admin.Service, ctx context.Context, address string) error, done string) func(*flag.FlagSet) adminRun {
	return noFlags(func(ctx context.Context, c adminEnv, args []string) error {
		a, err := addressArg(args)
		if err != nil {
			return err
		}
		if err := do(c.ops, ctx, a); err != nil {
			return subscriberError(err, a)
		}
		fmt.Fprintln(c.stdout, done)
		return nil
	})
}

// importBatch is how many rows import stores in one transaction: enough
// that the cost of a transaction (its commit, an fsync) is shared by many
// rows, and few enough that each statement stays small and an
// interrupted import loses little.
const importBatch = 1000

// importResult is what an import did: the subscriptions stored, the
// subscribers created and the rows skipped, and the last line whose
// subscription was stored.
type importResult struct {
	imported, newSubscribers, skipped int
	through                           int
}

// countingReader counts the bytes read through it, for the progress bar.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// importSubscriptions reads the CSV and imports its rows, importBatch at a
// time, each batch in one transaction; a refused row is reported on errw
// with its line number and skipped, the rest go on. The file is read as
// it goes, so memory stays the same whatever its size. When a batch
// cannot be stored the import stops there: the batches before it stay
// imported, and the error says from which line nothing was.
func importSubscriptions(ctx context.Context, ops *admin.Service, r io.Reader, size int64, bar *progress, errw io.Writer) (importResult, error) {
	var res importResult
	cr := &countingReader{r: r}
	rd := csv.NewReader(cr)
	rd.FieldsPerRecord = -1
	rd.TrimLeadingSpace = true
	rd.ReuseRecord = true
	header, err := rd.Read()
	if err != nil {
		return res, fmt.Errorf("reading the header row: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["email"]; !ok {
		return res, usageError("the header row must name an email column (and topic, department, frequency)")
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	im, err := ops.NewImport(ctx)
	if err != nil {
		return res, err
	}
	skip := func(line int, msg string) {
		res.skipped++
		bar.clear()
		fmt.Fprintf(errw, "line %d: %s\n", line, msg)
	}
	batch := make([]store.ImportRow, 0, importBatch)
	first, last := 0, 0 // the lines of the batch's first and last rows
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := im.Store(ctx, batch)
		if err != nil {
			bar.clear()
			return fmt.Errorf("lines %d to %d and the rest of the file were not imported (importing the file again adds only what is missing): %w", first, last, err)
		}
		res.imported += len(batch)
		res.newSubscribers += n
		res.through = last
		bar.add(len(batch))
		batch = batch[:0]
		return nil
	}
	for {
		rec, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := rd.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				skip(pe.Line, pe.Err.Error())
				continue
			}
			bar.clear()
			return res, err
		}
		in := admin.SubscriptionInput{Address: get(rec, "email"), Topic: get(rec, "topic"), Department: get(rec, "department"),
			Search: get(rec, "search"), Frequency: get(rec, "frequency")}
		if in.Address == "" && len(rec) == 1 {
			continue // a blank line
		}
		row, err := im.Check(in)
		if err != nil {
			var fe admin.FieldErrors
			if !errors.As(err, &fe) {
				bar.clear()
				return res, fmt.Errorf("line %d: %w", line, err)
			}
			skip(line, strings.Join(problems(fe, in, importLabels), "; "))
		} else {
			if len(batch) == 0 {
				first = line
			}
			batch = append(batch, row)
			last = line
			if len(batch) == importBatch {
				if err := flush(); err != nil {
					return res, err
				}
			}
		}
		bar.update(cr.n, size)
	}
	if err := flush(); err != nil {
		return res, err
	}
	bar.done(size, size)
	return res, nil
}

// exportSubscriptions writes every confirmed subscription as CSV in the
// import's format.
func exportSubscriptions(ctx context.Context, ops *admin.Service, w io.Writer, bar *progress) (int, error) {
	total, err := ops.CountSubscriptions(ctx)
	if err != nil {
		return 0, err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"email", "topic", "department", "frequency", "search"}); err != nil {
		return 0, err
	}
	n := 0
	err = ops.EachSubscription(ctx, func(r admin.SubscriptionInput) error {
		n++
		bar.update(int64(n), int64(total))
		return cw.Write([]string{r.Address, r.Topic, r.Department, r.Frequency, r.Search})
	})
	if err != nil {
		bar.clear()
		return n, err
	}
	cw.Flush()
	bar.done(int64(n), int64(max(total, n)))
	return n, cw.Error()
}
