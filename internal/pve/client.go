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
	"regexp"
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

	mu        sync.Mutex
	ticket    string
	csrf      string
	ticketAt  time.Time
	loginOnce sync.Mutex

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
}

const (
	ticketLifetime = 2 * time.Hour
	// renew well before PVE's two-hour expiry.
	ticketRenewAfter = 90 * time.Minute
	defaultUserAgent = "terraform-provider-proxmoxapp"
	getAttempts      = 3
)

var (
	reTokenID  = regexp.MustCompile(`^[^\s@!=]+@[A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$`)
	reUsername = regexp.MustCompile(`^[^\s@]+(@[A-Za-z0-9.\-_]+)?$`)
)

// NewClient checks the configuration and builds a client. With a username and
// password it logs in (POST /access/ticket) at once, so bad credentials fail
// here; an API token is not checked against the server until the first call.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
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
	switch {
	case cfg.APIToken != "" && (cfg.Username != "" || cfg.Password != ""):
		return nil, errors.New("pve: configure either an API token or a username and password, not both")
	case cfg.APIToken != "":
		id, secret, ok := splitToken(cfg.APIToken)
		if !ok {
			return nil, errors.New(`pve: the API token must have the form "USER@REALM!TOKENID=SECRET" (for example "root@pam!terraform=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")`)
		}
		c.tokenID, c.tokenSecret = id, secret
	case cfg.Username != "" || cfg.Password != "":
		if cfg.Username == "" || cfg.Password == "" {
			return nil, errors.New("pve: a username needs a password and a password needs a username")
		}
		if !reUsername.MatchString(cfg.Username) {
			return nil, fmt.Errorf("pve: the username %q must have the form USER@REALM (for example root@pam)", cfg.Username)
		}
		c.username, c.password, c.otp = cfg.Username, cfg.Password, cfg.OTP
	default:
		return nil, errors.New("pve: no credentials: set an API token or a username and password")
	}

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.Insecure {
		tlsCfg.InsecureSkipVerify = true //nolint:gosec // explicitly asked for
	} else if len(cfg.CACertPEM) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CACertPEM) {
			return nil, errors.New("pve: the CA certificate is not valid PEM (expected one or more \"-----BEGIN CERTIFICATE-----\" blocks)")
		}
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
			return nil, err
		}
	}
	return c, nil
}

func normalizeEndpoint(ep string) (string, error) {
	ep = strings.TrimSpace(ep)
	if ep == "" {
		return "", errors.New("pve: the endpoint is empty (expected e.g. https://pve.example.com:8006/)")
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("pve: the endpoint %q is not a valid URL (expected e.g. https://pve.example.com:8006/)", ep)
	}
	if u.User != nil {
		return "", errors.New("pve: the endpoint must not contain credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("pve: the endpoint %q must not have a query or fragment", u.Redacted())
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/api2/json")
	u.Path = strings.TrimRight(p, "/") + "/api2/json"
	u.RawPath = ""
	return u.String(), nil
}

// splitToken splits USER@REALM!TOKENID=SECRET at the last '='... PVE splits at
// the last '=' too, so a secret may not contain '=' (a UUID never does).
func splitToken(tok string) (id, secret string, ok bool) {
	tok = strings.TrimSpace(tok)
	tok = strings.TrimPrefix(tok, "PVEAPIToken=")
	i := strings.LastIndexByte(tok, '=')
	if i <= 0 || i == len(tok)-1 {
		return "", "", false
	}
	id, secret = tok[:i], tok[i+1:]
	if !reTokenID.MatchString(id) || strings.ContainsAny(secret, " \t\r\n") {
		return "", "", false
	}
	return id, secret, true
}

// login gets a ticket; renew re-posts the current ticket as the password.
func (c *Client) login(ctx context.Context, renew bool) error {
	c.loginOnce.Lock()
	defer c.loginOnce.Unlock()
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
	return c.call(ctx, http.MethodDelete, path, q, nil, out)
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

func (e *netError) Error() string {
	msg := fmt.Sprintf("%s %s: %v", e.method, e.path, e.err)
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
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path+queryString(q), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		if c.tokenID != "" {
			req.Header.Set("Authorization", "PVEAPIToken="+c.tokenID+"="+c.tokenSecret)
		} else {
			c.mu.Lock()
			ticket, csrf := c.ticket, c.csrf
			c.mu.Unlock()
			req.AddCookie(&http.Cookie{Name: "PVEAuthCookie", Value: url.QueryEscape(ticket)})
			if method != http.MethodGet {
				req.Header.Set("CSRFPreventionToken", csrf)
			}
		}
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, shown, ctx.Err())
		}
		return &netError{method: method, path: shown, err: scrubURLError(err)}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return &netError{method: method, path: shown, err: err}
	}
	tflog.Trace(ctx, "PVE request", map[string]any{"method": method, "path": shown, "status": res.StatusCode, "duration_ms": time.Since(start).Milliseconds()})
	if res.StatusCode < 200 || res.StatusCode > 299 {
		ae := &APIError{Method: method, Path: shown, StatusCode: res.StatusCode, Status: res.Status}
		var env struct {
			Message string            `json:"message"`
			Errors  map[string]string `json:"errors"`
		}
		if len(raw) > 0 && json.Unmarshal(raw, &env) == nil {
			ae.Message = strings.TrimSpace(env.Message)
			ae.Errors = env.Errors
		} else if len(raw) > 0 {
			// tolerate errors values that are not strings
			var loose struct {
				Message string         `json:"message"`
				Errors  map[string]any `json:"errors"`
			}
			if json.Unmarshal(raw, &loose) == nil {
				ae.Message = strings.TrimSpace(loose.Message)
				if len(loose.Errors) > 0 {
					ae.Errors = map[string]string{}
					for k, v := range loose.Errors {
						ae.Errors[k] = fmt.Sprint(v)
					}
				}
			}
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if w, ok := out.(*envelopeWrapper); ok {
		if err := json.Unmarshal(raw, w.out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, shown, err)
		}
		return nil
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, shown, err)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, shown, err)
	}
	return nil
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
