package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"herald/alerts/bounce"
)

// exTempFail is sysexits.h's EX_TEMPFAIL: an MTA's pipe transport keeps
// the message queued and tries again later.
const exTempFail = 75

// exitError ends a command with an exit status of its own.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// runBounce reads one message on stdin, as an MTA's pipe transport hands
// it over, and applies the report it holds. A message that changes
// nothing (an auto-reply, a forged token) still exits 0, so the MTA does
// not bounce the bounce; any failure that trying again may cure (the
// database is down, the config cannot be read) exits 75 (EX_TEMPFAIL).
func runBounce(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, cfgFlag := newFlags("bounce", stderr)
	rcpt := fs.String("recipient", "", "the bounce `ADDRESS` the message was delivered to (Postfix: ${recipient}); default: its Delivered-To or X-Original-To header")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	tempFail := func(err error) error { return &exitError{code: exTempFail, err: err} }
	a, err := openConfigured(ctx, *cfgFlag, stderr)
	if err != nil {
		return tempFail(err)
	}
	defer a.Close()
	p, err := a.newBounces(ctx)
	if err != nil {
		return tempFail(err)
	}
	raw, err := io.ReadAll(io.LimitReader(stdin, a.cfg.Bounces.MaxMessageBytes+1))
	if err != nil {
		return tempFail(fmt.Errorf("reading the message: %w", err))
	}
	to := *rcpt
	if to == "" {
		to = deliveredTo(raw)
	}
	out, err := p.ProcessMessage(ctx, bytes.NewReader(raw), to)
	if err != nil {
		return tempFail(err)
	}
	if out.Applied {
		fmt.Fprintf(stdout, "report on message %d applied (suppressed: %v)\n", out.OutboxID, out.Suppressed)
	} else {
		fmt.Fprintf(stdout, "report ignored: %s\n", out.Ignored)
	}
	return nil
}

// deliveredTo finds the bounce address a message was delivered to in the
// headers a delivering MTA adds: the first Delivered-To or X-Original-To
// in the form of a bounce address.
func deliveredTo(raw []byte) string {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	for _, k := range []string{"Delivered-To", "X-Original-To"} {
		for _, v := range msg.Header[k] {
			if _, ok := bounce.TokenOf(v); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

// exitStatus returns the status an error asks the process to exit with,
// reporting it on stderr.
func exitStatus(name string, err error, stderr io.Writer) (int, bool) {
	var ee *exitError
	if !errors.As(err, &ee) {
		return 0, false
	}
	fmt.Fprintf(stderr, "herald %s: %v\n", name, ee.err)
	return ee.code, true
}
