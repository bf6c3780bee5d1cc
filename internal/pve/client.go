package pve

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-log/tflog"
	proxmox "github.com/luthermonson/go-proxmox"
)

// Client talks to one PVE cluster. It is safe for concurrent use.
type Client struct {
	base      string // https://host:8006/api2/json
	hc        *http.Client
	userAgent string

	tokenID     string // USER@REALM!TOKENID
	tokenSecret string

	username string
	password string
	otp      string

	mu       sync.Mutex
	ticket   string
	csrf     string
	ticketAt time.Time
	loginMu  sync.Mutex // one login at a time

	// polling knobs (tests shorten them)
	pollMin time.Duration
	pollMax time.Duration
	// logReadInterval: how often a running task's log is read
	logReadInterval time.Duration
	// transientGrace: how long a task is waited for through failing polls
	transientGrace time.Duration
	// cleanupTimeout bounds the clean-up after an interrupted operation
	// (stopping a task, removing a partial archive, starting a guest again)
	cleanupTimeout time.Duration
	now            func() time.Time

	// watchers: one task-list poller per node, shared by all task waits
	watchers nodeWatchers
	// listings: storage listings shared by the refreshes of one run
	listings listingCache
	// lookups: where guests are and what storages nodes have, shared briefly
	lookups lookupCache
}

const (
	ticketLifetime = 2 * time.Hour
	// renew well before PVE's two-hour expiry.
	ticketRenewAfter = 90 * time.Minute
	defaultUserAgent = "terraform-provider-proxmoxapp"
	getAttempts      = 3
)

// NewClient checks the configuration and builds a client. With a username and
// password it logs in (POST /access/ticket) at once, so bad credentials fail
// here; an API token is not checked against the server until the first call
// (CheckAccess checks either kind with one request).
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, errs[0]
	}
	base, err := normalizeEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:      base,
		userAgent: cfg.UserAgent,
		pollMin:   100 * time.Millisecond,
		pollMax:   2 * time.Second,
		now:       time.Now,

		logReadInterval: defaultLogReadInterval,
		transientGrace:  defaultTransientGrace,
		cleanupTimeout:  defaultCleanupTimeout,
	}
	if c.userAgent == "" {
		c.userAgent = defaultUserAgent
	}
	if cfg.APIToken != "" {
		c.tokenID, c.tokenSecret, _ = splitToken(cfg.APIToken)
	} else {
		c.username, c.password, c.otp = cfg.Username, cfg.Password, cfg.OTP
	}

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.Insecure {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // explicitly asked for
	} else if len(cfg.CACertPEM) > 0 {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(cfg.CACertPEM) // Validate checked it
		tlsCfg.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		// PVE speaks HTTP/1.1 only
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	c.hc = &http.Client{Transport: tr}

	if c.username != "" {
		if err := c.login(ctx, false); err != nil {
			return nil, c.accessError(err)
		}
	}
	return c, nil
}

// login gets a ticket; renew re-posts the current ticket as the password.
func (c *Client) login(ctx context.Context, renew bool) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	cur, at := c.ticket, c.ticketAt
	c.mu.Unlock()
	if renew && cur != "" && c.now().Sub(at) < ticketRenewAfter {
		return nil // renewed meanwhile by another goroutine
	}
	creds := proxmox.Credentials{Username: c.username, Password: c.password, Otp: c.otp}
	if renew && cur != "" && c.now().Sub(at) < ticketLifetime {
		creds.Password, creds.Otp = cur, ""
	}
	var sess proxmox.Session
	err := c.do(ctx, http.MethodPost, "/access/ticket", nil, creds, &sess, false)
	if err != nil && renew && creds.Password != c.password {
		creds.Password, creds.Otp = c.password, c.otp
		err = c.do(ctx, http.MethodPost, "/access/ticket", nil, creds, &sess, false)
	}
	if err != nil {
		return fmt.Errorf("pve: login as %s failed: %w", c.username, err)
	}
	if sess.Ticket == "" {
		return fmt.Errorf("pve: login as %s returned no ticket (is a second factor required? set the OTP)", c.username)
	}
	c.mu.Lock()
	c.ticket, c.csrf, c.ticketAt = sess.Ticket, sess.CSRFPreventionToken, c.now()
	c.mu.Unlock()
	return nil
}

// get, post, put, del: JSON API calls. path is below /api2/json.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	return c.call(ctx, http.MethodGet, path, q, nil, out)
}

func (c *Client) post(ctx context.Context, path string, body map[string]any, out any) error {
	c.listings.invalidate()
	defer c.listings.invalidate()
	if movesGuests(path) {
		defer c.lookups.forget()
	}
	return c.call(ctx, http.MethodPost, path, nil, body, out)
}

func (c *Client) put(ctx context.Context, path string, body map[string]any, out any) error {
	c.listings.invalidate()
	defer c.listings.invalidate()
	return c.call(ctx, http.MethodPut, path, nil, body, out)
}

// Writes empty the shared storage listings (see listingCache).
func (c *Client) del(ctx context.Context, path string, q url.Values, out any) error {
	c.listings.invalidate()
	defer c.listings.invalidate()
	if movesGuests(path) {
		defer c.lookups.forget()
	}
	return c.call(ctx, http.MethodDelete, path, q, nil, out)
}

// movesGuests: a write that creates, restores or removes a guest changes the
// cluster's layout (POST /nodes/{n}/{lxc|qemu}, DELETE …/{lxc|qemu}/{vmid}).
func movesGuests(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	return len(parts) >= 3 && parts[0] == "nodes" && (parts[2] == "lxc" || parts[2] == "qemu") && len(parts) <= 4
}

// call adds authentication, ticket renewal and retries of safe GETs.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, body any, out any) error {
	if c.username != "" {
		c.mu.Lock()
		age := c.now().Sub(c.ticketAt)
		c.mu.Unlock()
		if age >= ticketRenewAfter {
			if err := c.login(ctx, true); err != nil {
				return err
			}
		}
	}
	attempts := 1
	if method == http.MethodGet {
		attempts = getAttempts
	}
	relogged := false
	var err error
	for i := 0; ; i++ {
		err = c.do(ctx, method, path, q, body, out, true)
		if err == nil {
			return nil
		}
		var ae *APIError
		// a 401 means the request was not executed: log in again and repeat once
		if errors.As(err, &ae) && ae.StatusCode == 401 && c.username != "" && !relogged {
			relogged = true
			if lerr := c.login(ctx, false); lerr != nil {
				return errors.Join(err, lerr)
			}
			i--
			continue
		}
		if i+1 >= attempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		wait := time.Duration(200*(1<<i)) * time.Millisecond
		tflog.Debug(ctx, "retrying PVE request", map[string]any{"method": method, "path": path, "error": err.Error()})
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// retryable: network errors and 502/503/504 (only ever used for GETs).
func retryable(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode == 502 || ae.StatusCode == 503 || ae.StatusCode == 504
	}
	var ne *netError
	return errors.As(err, &ne)
}

// netError is a transport failure (no HTTP answer).
type netError struct {
	method, path string
	err          error
}

// plain is the error without the hint on what to do.
func (e *netError) plain() string { return fmt.Sprintf("%s %s: %v", e.method, e.path, e.err) }

func (e *netError) Error() string {
	msg := e.plain()
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	switch {
	case errors.As(e.err, &unknownCA):
		msg += " (the server's certificate is not signed by a trusted CA: pin the cluster's CA with ca_cert / " +
			"PROXMOX_VE_CA_CERT, e.g. /etc/pve/pve-root-ca.pem, or set insecure = true)"
	case errors.As(e.err, &hostname):
		msg += " (the certificate does not name this host: use the endpoint name the certificate was issued for)"
	}
	return msg
}
func (e *netError) Unwrap() error { return e.err }

// do sends one request. out receives the "data" member of the answer.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, out any, auth bool) error {
	shown := path
	if u, err := url.PathUnescape(path); err == nil {
		shown = u
	}
	if len(q) > 0 {
		shown += "?" + q.Encode()
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	if auth {
		c.authenticate(req)
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		c.logRequest(ctx, method, shown, 0, start, err)
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, shown, ctx.Err())
		}
		return &netError{method: method, path: shown, err: scrubURLError(err)}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	c.logRequest(ctx, method, shown, res.StatusCode, start, err)
	if err != nil {
		return &netError{method: method, path: shown, err: err}
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return decodeAPIError(method, shown, res, raw)
	}
	if err := decodeAnswer(raw, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, shown, err)
	}
	return nil
}

// newRequest builds a JSON API request.
func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path+queryString(q), rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// authenticate adds the API token, or the ticket cookie and (for writes) the
// CSRF token.
func (c *Client) authenticate(req *http.Request) {
	if c.tokenID != "" {
		req.Header.Set("Authorization", "PVEAPIToken="+c.tokenID+"="+c.tokenSecret)
		return
	}
	c.mu.Lock()
	ticket, csrf := c.ticket, c.csrf
	c.mu.Unlock()
	req.AddCookie(&http.Cookie{Name: "PVEAuthCookie", Value: url.QueryEscape(ticket)})
	if req.Method != http.MethodGet {
		req.Header.Set("CSRFPreventionToken", csrf)
	}
}

// decodeAPIError keeps what an error answer says: the status line (where PVE
// puts its message), and the JSON "message" and "errors" of newer servers.
func decodeAPIError(method, shown string, res *http.Response, raw []byte) *APIError {
	ae := &APIError{Method: method, Path: shown, StatusCode: res.StatusCode, Status: res.Status}
	if len(raw) == 0 {
		return ae
	}
	// errors values are usually strings; tolerate any JSON
	var env struct {
		Message string         `json:"message"`
		Errors  map[string]any `json:"errors"`
	}
	if json.Unmarshal(raw, &env) != nil {
		return ae
	}
	ae.Message = strings.TrimSpace(env.Message)
	if len(env.Errors) > 0 {
		ae.Errors = map[string]string{}
		for k, v := range env.Errors {
			if str, ok := v.(string); ok {
				ae.Errors[k] = str
			} else {
				ae.Errors[k] = fmt.Sprint(v)
			}
		}
	}
	return ae
}

// decodeAnswer puts the answer's "data" into out (the whole answer for an
// envelopeWrapper); a null or missing "data" leaves out as it is.
func decodeAnswer(raw []byte, out any) error {
	if out == nil {
		return nil
	}
	if w, ok := out.(*envelopeWrapper); ok {
		return json.Unmarshal(raw, w.out)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return err
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return nil
	}
	return json.Unmarshal(env.Data, out)
}

// logRequest writes one DEBUG line per PVE request: method, path (with the
// query, which never carries credentials), HTTP status (0 when no answer
// came) and duration. The token secret, password and ticket travel only in
// headers and the login body, which are never logged; masking them as well
// keeps them out should a PVE message ever quote one back.
func (c *Client) logRequest(ctx context.Context, method, path string, status int, start time.Time, err error) {
	fields := map[string]any{
		"method": method, "path": path, "status": status,
		"duration_ms": time.Since(start).Milliseconds(),
	}
	if err != nil {
		fields["error"] = scrubURLError(err).Error()
	}
	tflog.Debug(c.maskSecrets(ctx), "PVE request", fields)
}

// maskSecrets masks the client's secrets in every log line written with ctx.
func (c *Client) maskSecrets(ctx context.Context) context.Context {
	c.mu.Lock()
	secrets := []string{c.tokenSecret, c.password, c.otp, c.ticket, c.csrf}
	c.mu.Unlock()
	for _, s := range secrets {
		if s != "" {
			ctx = tflog.MaskAllFieldValuesStrings(ctx, s)
			ctx = tflog.MaskMessageStrings(ctx, s)
		}
	}
	return ctx
}

// envelopeWrapper asks do to decode the whole answer, not only "data".
type envelopeWrapper struct{ out any }

// scrubURLError drops the URL from *url.Error (it never holds secrets, but
// keeps the message short) and keeps the cause.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// segPath joins raw path segments, escaping each one.
func segPath(segs ...string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func queryString(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Version returns the PVE version, e.g. "9.2.11".
func (c *Client) Version(ctx context.Context) (string, error) {
	var v proxmox.Version
	if err := c.get(ctx, "/version", nil, &v); err != nil {
		return "", fmt.Errorf("reading the PVE version: %w", err)
	}
	return v.Version, nil
}
