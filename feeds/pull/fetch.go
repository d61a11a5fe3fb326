package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"herald/feeds/netguard"
	"herald/store"
)

// fetchMaxRedirects is how many redirects a fetch follows before giving up;
// publishers move feeds now and then, but a longer chain is a broken setup.
const fetchMaxRedirects = 5

// fetchAccept lists the feed types Herald reads, preferred first, so
// publishers that negotiate content serve a feed rather than a web page.
const fetchAccept = "application/atom+xml, application/rss+xml, application/feed+json, " +
	"application/rdf+xml;q=0.9, application/json;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"

// fetchResult is one answered request for a source's feed.
type fetchResult struct {
	notModified  bool
	body         []byte
	contentType  string
	etag         string
	lastModified string
	// finalURL is where the body came from after redirects; relative links
	// in the feed are resolved against it.
	finalURL string
}

// fetchError is a failed fetch; retryAfter is the publisher's own request
// to wait (from a 429 or 503), which backoff honours.
type fetchError struct {
	msg        string
	retryAfter time.Duration
	err        error
}

func (e *fetchError) Error() string { return e.msg }
func (e *fetchError) Unwrap() error { return e.err }

// newFetchClient builds the HTTP client the puller uses: bounded at every
// stage (dial, TLS, headers, whole request) so a stalled publisher costs at
// most its own timeout. It connects only where guard permits (by default
// public addresses), checked as each connection is made, so a redirect or
// a DNS answer cannot lead a pull into the operator's network.
func newFetchClient(timeout time.Duration, guard netguard.Guard) *http.Client {
	connect := min(timeout, 10*time.Second)
	guarded := guard.Dialer(connect)
	// Through a proxy from the environment, Herald connects to the proxy,
	// which the operator chose and may run on their own network; the
	// publisher's name is checked instead, before each request.
	direct := netguard.Guard{AllowPrivate: true}.Dialer(connect)
	var proxies sync.Map // "host:port" of each proxy used
	transport := &http.Transport{
		Proxy: func(req *http.Request) (*url.URL, error) {
			u, err := http.ProxyFromEnvironment(req)
			if u == nil || err != nil {
				return u, err
			}
			if err := guard.CheckHost(req.Context(), req.URL.Hostname(), netguard.Port(req.URL)); err != nil {
				return nil, err
			}
			proxies.Store(fetchProxyAddr(u), true)
			return u, nil
		},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if _, ok := proxies.Load(addr); ok {
				return direct.DialContext(ctx, network, addr)
			}
			return guarded.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport:     transport,
		Timeout:       timeout,
		CheckRedirect: fetchCheckRedirect,
	}
}

// fetchProxyAddr is the address the transport dials for proxy u.
func fetchProxyAddr(u *url.URL) string {
	return net.JoinHostPort(strings.ToLower(u.Hostname()), strconv.Itoa(int(netguard.Port(u))))
}

// fetchCheckRedirect follows at most fetchMaxRedirects redirects, only to
// http(s) URLs, and names a loop as a loop rather than letting it run into
// the redirect limit.
func fetchCheckRedirect(req *http.Request, via []*http.Request) error {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to %q refused: only http and https are followed", req.URL.Redacted())
	}
	next := req.URL.String()
	for _, v := range via {
		if v.URL.String() == next {
			return fmt.Errorf("redirect loop: %s redirects back to %s", via[len(via)-1].URL.Redacted(), req.URL.Redacted())
		}
	}
	if len(via) > fetchMaxRedirects {
		return fmt.Errorf("too many redirects: gave up after %d", fetchMaxRedirects)
	}
	return nil
}

// fetch requests src's feed with its stored validators and reads the body,
// refusing one larger than maxBody rather than parsing a truncated copy.
func (p *Puller) fetch(ctx context.Context, src store.Source) (fetchResult, error) {
	if problem := store.CheckFeedURL(src.URL); problem != "" {
		return fetchResult{}, &fetchError{msg: problem}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return fetchResult{}, &fetchError{msg: fmt.Sprintf("bad request for %s: %v", src.URL, err), err: err}
	}
	req.Header.Set("User-Agent", p.cfg.UserAgent)
	req.Header.Set("Accept", fetchAccept)
	if src.ETag != "" {
		req.Header.Set("If-None-Match", src.ETag)
	}
	if src.LastModified != "" {
		req.Header.Set("If-Modified-Since", src.LastModified)
	}
	resp, err := p.HTTPClient.Do(req)
	if err != nil {
		return fetchResult{}, fetchDescribe(ctx, err, p.cfg.Timeout, "request")
	}
	defer resp.Body.Close()

	res := fetchResult{
		contentType:  resp.Header.Get("Content-Type"),
		etag:         resp.Header.Get("ETag"),
		lastModified: resp.Header.Get("Last-Modified"),
		finalURL:     resp.Request.URL.String(),
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		res.notModified = true
		// Keep the validators we sent when the 304 does not repeat them.
		if res.etag == "" {
			res.etag = src.ETag
		}
		if res.lastModified == "" {
			res.lastModified = src.LastModified
		}
		return res, nil
	case resp.StatusCode == http.StatusNoContent:
		return fetchResult{}, &fetchError{msg: "HTTP 204 No Content: the publisher sent no feed"}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		fe := &fetchError{msg: "HTTP " + resp.Status}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			fe.retryAfter = fetchRetryAfter(resp.Header.Get("Retry-After"), p.now())
		}
		return fetchResult{}, fe
	}

	limit := p.cfg.MaxBody
	if resp.ContentLength > limit {
		return fetchResult{}, &fetchError{msg: fmt.Sprintf("body larger than %d bytes (Content-Length %d)", limit, resp.ContentLength)}
	}
	var buf []byte
	if resp.ContentLength > 0 {
		buf = make([]byte, 0, resp.ContentLength+1)
	}
	body, err := fetchReadAll(io.LimitReader(resp.Body, limit+1), buf)
	if err != nil {
		return fetchResult{}, fetchDescribe(ctx, err, p.cfg.Timeout, "reading body")
	}
	if int64(len(body)) > limit {
		return fetchResult{}, &fetchError{msg: fmt.Sprintf("body larger than %d bytes", limit)}
	}
	res.body = body
	return res, nil
}

// fetchReadAll is io.ReadAll appending to buf, so a body whose length the
// server announced is read without regrowing. A body of unknown length
// doubles the buffer as it fills: a multi-megabyte feed sent in chunks
// then costs about twice its size in copies, not the five times
// append's gentler growth for large slices does.
func fetchReadAll(r io.Reader, buf []byte) ([]byte, error) {
	if buf == nil {
		buf = make([]byte, 0, 64<<10)
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// fetchDescribe turns a transport error into a sentence an admin can act
// on: a timeout says how long was waited, anything else keeps its cause
// without Go's "Get URL:" prefix repeated.
func fetchDescribe(ctx context.Context, err error, timeout time.Duration, stage string) error {
	var ue *url.Error
	cause := err
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) || ctx.Err() == context.DeadlineExceeded {
		return &fetchError{msg: fmt.Sprintf("timed out after %s (%s)", timeout, stage), err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &fetchError{msg: stage + ": cancelled", err: err}
	}
	var refused *netguard.RefusedError
	if errors.As(err, &refused) {
		return &fetchError{msg: "refused: " + refused.Error() + "; set pull.allow_private to pull from private networks", err: err}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &fetchError{msg: stage + ": connection closed before the whole body arrived (truncated)", err: err}
	}
	return &fetchError{msg: stage + ": " + strings.TrimSpace(cause.Error()), err: err}
}

// fetchRetryAfter reads a Retry-After header (seconds or an HTTP date).
func fetchRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
