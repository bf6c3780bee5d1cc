package pve

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// The configuration fields a ConfigError can name. They are spelled like the
// provider's attributes, so the provider maps them without a table of its own.
const (
	FieldEndpoint = "endpoint"
	FieldAPIToken = "api_token"
	FieldUsername = "username"
	FieldPassword = "password"
	FieldCACert   = "ca_cert"
)

// ConfigError is one problem with a Config, found before any request is
// sent. Summary is a title ("Malformed Proxmox VE API token"); Detail says
// what is wrong and how to fix it, and never holds a secret.
type ConfigError struct {
	Field   string
	Summary string
	Detail  string
}

func (e *ConfigError) Error() string { return "pve: " + e.Detail }

// PVE's own grammars (pve-access-control): a user is USER@REALM, a token id
// USER@REALM!TOKENID with a token name of at least two characters.
var (
	reTokenID  = regexp.MustCompile(`^[^\s@!=:]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$`)
	reUsername = regexp.MustCompile(`^[^\s@!=:]+@[A-Za-z][A-Za-z0-9.\-_]+$`)
)

const tokenExample = "terraform@pve!backup=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"

// Validate checks a Config the way NewClient needs it: the one place that
// says what a valid endpoint, token, login and CA certificate look like. It
// returns every problem, each naming its field.
func (cfg Config) Validate() []*ConfigError {
	var errs []*ConfigError
	add := func(field, summary, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Summary: summary, Detail: fmt.Sprintf(format, args...)})
	}

	if strings.TrimSpace(cfg.Endpoint) == "" {
		add(FieldEndpoint, "Missing Proxmox VE endpoint",
			"no endpoint is set: give the base URL of the API, e.g. https://pve.example.com:8006/.")
	} else if _, err := normalizeEndpoint(cfg.Endpoint); err != nil {
		add(FieldEndpoint, "Malformed Proxmox VE endpoint", "%s", err.Error())
	}

	hasToken := cfg.APIToken != ""
	hasLogin := cfg.Username != "" || cfg.Password != ""
	switch {
	case hasToken && hasLogin:
		add(FieldAPIToken, "Conflicting Proxmox VE credentials",
			"both an API token and a username/password are set: set one of them, not both.")
	case !hasToken && !hasLogin:
		add(FieldAPIToken, "Missing Proxmox VE credentials",
			"no credentials are set: give an API token as USER@REALM!TOKENID=SECRET, or a username and password.")
	case hasToken:
		if _, _, ok := splitToken(cfg.APIToken); !ok {
			// Never echo the token: it holds the secret.
			add(FieldAPIToken, "Malformed Proxmox VE API token",
				"the API token must look like USER@REALM!TOKENID=SECRET, where TOKENID starts with a letter and has "+
					"at least two characters, e.g. %s (the value is not shown because it holds the secret).", tokenExample)
		}
	case cfg.Username == "":
		add(FieldUsername, "Incomplete Proxmox VE login",
			"a password is set but no username: set both, the username as USER@REALM (e.g. root@pam).")
	case cfg.Password == "":
		add(FieldPassword, "Incomplete Proxmox VE login",
			"the username %s has no password: set both.", cfg.Username)
	case !reUsername.MatchString(cfg.Username):
		add(FieldUsername, "Malformed Proxmox VE username",
			"the username must include the realm, as USER@REALM (e.g. root@pam or terraform@pve), got %q.", cfg.Username)
	}

	if !cfg.Insecure && len(cfg.CACertPEM) > 0 && !x509.NewCertPool().AppendCertsFromPEM(cfg.CACertPEM) {
		add(FieldCACert, "Invalid CA certificate",
			"the CA certificate is not valid PEM: expected one or more \"-----BEGIN CERTIFICATE-----\" blocks, "+
				"such as /etc/pve/pve-root-ca.pem of any cluster node.")
	}
	return errs
}

// Identity is who the client authenticates as: the token id
// (USER@REALM!TOKENID) or the username. It never holds a secret.
func (cfg Config) Identity() string {
	if id, _, ok := splitToken(cfg.APIToken); ok {
		return id
	}
	return cfg.Username
}

func normalizeEndpoint(ep string) (string, error) {
	ep = strings.TrimSpace(ep)
	if ep == "" {
		return "", fmt.Errorf("the endpoint is empty (expected e.g. https://pve.example.com:8006/)")
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("the endpoint must be an absolute http(s) URL such as https://pve.example.com:8006/, got %q", ep)
	}
	if u.User != nil {
		return "", fmt.Errorf("the endpoint must not contain credentials: put them in api_token or username/password")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("the endpoint %q must not have a query or fragment", u.Redacted())
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/api2/json")
	u.Path = strings.TrimRight(p, "/") + "/api2/json"
	u.RawPath = ""
	return u.String(), nil
}

// splitToken splits USER@REALM!TOKENID=SECRET at the last '='. PVE splits at
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
