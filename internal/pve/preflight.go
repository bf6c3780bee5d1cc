package pve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Preflight checks: cheap lookups that tell, before any work starts, whether
// a backup or restore can succeed. A *PreflightError is a certain answer
// ("this guest does not exist"); any other error means the lookup itself
// failed (a node that is down, a network blip) and the answer is unknown, so
// callers at plan time leave the question to the apply.

// PreflightError is a certain problem found by a preflight check. Field names
// the argument at fault as the provider spells it (vmid, node, storage,
// backup, safety_backup_storage).
type PreflightError struct {
	Field   string
	Summary string
	Detail  string
	reason  string // the cause alone, without the fix, for callers that reword it
}

func (e *PreflightError) Error() string { return e.Detail }

// AsPreflight returns the certain problem in err, or nil.
func AsPreflight(err error) *PreflightError {
	var pe *PreflightError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// Access problem kinds of an *AccessError.
const (
	AccessAuthentication = "authentication"
	AccessTLS            = "tls"
	AccessConnection     = "connection"
	AccessEndpoint       = "endpoint"
)

// AccessError says why the API could not be used with the configured
// endpoint and credentials: which endpoint, as whom (never the secret), what
// went wrong and what to do.
type AccessError struct {
	Kind     string // AccessAuthentication, AccessTLS, AccessConnection or AccessEndpoint
	Endpoint string // the API base URL
	Identity string // token id or username; "" when unknown
	Token    bool   // the identity is an API token
	Err      error
}

func (e *AccessError) Unwrap() error { return e.Err }

// Summary is a title naming the kind of problem.
func (e *AccessError) Summary() string {
	switch e.Kind {
	case AccessAuthentication:
		return "Proxmox VE authentication failed"
	case AccessTLS:
		return "Proxmox VE TLS certificate not trusted"
	case AccessEndpoint:
		return "Proxmox VE endpoint does not answer as the API"
	default:
		return "Cannot connect to Proxmox VE"
	}
}

// Fix says what to do about it.
func (e *AccessError) Fix() string {
	httpHint := ""
	if strings.HasPrefix(e.Endpoint, "http://") {
		httpHint = " The endpoint uses http://, but Proxmox VE serves its API over HTTPS only: use https://HOST:8006/."
	}
	switch e.Kind {
	case AccessAuthentication:
		if e.Token {
			return "Check the token: api_token (PROXMOX_VE_API_TOKEN) must be USER@REALM!TOKENID=SECRET with the " +
				"secret PVE showed when the token was created (it is shown only once; create a new token if it is lost), " +
				"and neither the user nor the token may be expired or disabled (Datacenter → Permissions → API Tokens)." + httpHint
		}
		return "Check username (PROXMOX_VE_USERNAME, as USER@REALM) and password (PROXMOX_VE_PASSWORD); a user " +
			"with two-factor authentication also needs otp (PROXMOX_VE_OTP)." + httpHint
	case AccessTLS:
		if httpHint != "" {
			return strings.TrimSpace(httpHint)
		}
		return "Pin the cluster's CA with ca_cert (PROXMOX_VE_CA_CERT): copy /etc/pve/pve-root-ca.pem from any node. " +
			"If the certificate names another host, use that name in endpoint. insecure = true turns the check off, " +
			"for lab nodes only."
	case AccessEndpoint:
		if httpHint != "" {
			return strings.TrimSpace(httpHint)
		}
		return "Set endpoint to the base URL of the API, e.g. https://pve.example.com:8006/ (a trailing /api2/json is " +
			"accepted; no other path)."
	default:
		return "Check that endpoint (PROXMOX_VE_ENDPOINT) names a reachable node and port (8006 unless a proxy says " +
			"otherwise), and that no firewall or proxy is in the way." + httpHint
	}
}

func (e *AccessError) Error() string {
	who := ""
	if e.Identity != "" {
		kind := "user"
		if e.Token {
			kind = "API token"
		}
		who = fmt.Sprintf(" as %s %s", kind, e.Identity)
	}
	cause := e.Err.Error()
	var ne *netError
	if errors.As(e.Err, &ne) {
		// Fix says what to do; drop the transport error's own hint.
		cause = strings.Replace(cause, ne.Error(), ne.plain(), 1)
	}
	return fmt.Sprintf("connecting to %s%s failed: %s\n%s", e.Endpoint, who, cause, e.Fix())
}

// accessError classifies a failure of the first requests.
func (c *Client) accessError(err error) error {
	if err == nil {
		return nil
	}
	ae := &AccessError{Kind: AccessConnection, Endpoint: c.base, Err: err}
	if c.tokenID != "" {
		ae.Identity, ae.Token = c.tokenID, true
	} else {
		ae.Identity = c.username
	}
	var api *APIError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recordHeader tls.RecordHeaderError
	switch {
	case errors.As(err, &api) && api.StatusCode == 401:
		ae.Kind = AccessAuthentication
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		ae.Kind = AccessTLS
	case errors.As(err, &recordHeader):
		// https:// to a plain-HTTP server, or the other way round
		ae.Kind = AccessEndpoint
	case errors.As(err, &api):
		ae.Kind = AccessEndpoint
	}
	return ae
}

// accessCheckTimeout bounds CheckAccess, retries of a failed connection included.
const accessCheckTimeout = 30 * time.Second

// CheckAccess proves that the endpoint is reachable, its certificate trusted
// and the credentials accepted, with one request: GET /cluster/resources,
// which any authenticated user may read (the answer is filtered by the
// caller's privileges). Its answer is the shared layout the plan checks and
// the backups of this run look guests and storages up in, so the check costs
// no request of its own. It returns an *AccessError.
func (c *Client) CheckAccess(ctx context.Context) error {
	// A host that swallows packets must not hold a plan for minutes.
	ctx, cancel := context.WithTimeout(ctx, accessCheckTimeout)
	defer cancel()
	if _, err := c.clusterLayout(ctx); err != nil {
		return c.accessError(err)
	}
	return nil
}

// CheckGuest finds a guest for a backup or restore. A vmid that is not in the
// cluster, or a guest on another node than node (when node is not ""), is a
// *PreflightError.
func (c *Client) CheckGuest(ctx context.Context, vmid int, node string) (*Guest, error) {
	g, err := c.locateGuest(ctx, vmid)
	if IsNotFound(err) {
		return nil, &PreflightError{Field: "vmid", Summary: "Guest not found",
			Detail: fmt.Sprintf("guest %d does not exist in the cluster (or the credentials lack VM.Audit on /vms/%d): "+
				"check vmid against the guests in the Proxmox VE web interface.", vmid, vmid)}
	}
	if err != nil {
		return nil, err
	}
	if node != "" && node != g.Node {
		return g, &PreflightError{Field: "node", Summary: "Guest is on another node",
			Detail: fmt.Sprintf("guest %d is on node %s, not on node %s: set node = %q or leave node unset (it "+
				"defaults to the guest's node).", vmid, g.Node, node, g.Node)}
	}
	return g, nil
}

// contentNames says what a storage content type holds, for messages.
var contentNames = map[string]string{
	"backup":  "backups",
	"rootdir": "container root filesystems",
	"images":  "VM disks",
}

// CheckStorage checks that storage exists on node, is enabled and may hold
// content (backup, rootdir, images). field is the argument that names the
// storage. An absent storage or one without that content type is a
// *PreflightError naming the storages of the node that would do; a node that
// cannot be asked gives a plain error.
func (c *Client) CheckStorage(ctx context.Context, node, storage, content, field string) error {
	// The shared layout lists the storages enabled on each node that the
	// caller may audit, with their content types: enough to pass the check.
	// Anything else (absent, hidden from Datastore.Audit, other content) is
	// judged from the node's own storage list, which says why.
	if layout, err := c.clusterLayout(ctx); err == nil && layout.storageHolds(node, storage, content) {
		return nil
	}
	all, err := c.storageConfigOf(ctx, node)
	if err != nil {
		return err
	}
	var fitting []string
	var found *storageEntry
	for i, s := range all {
		if s.has(content) && int(s.Enabled) != 0 {
			fitting = append(fitting, s.Storage)
		}
		if s.Storage == storage {
			found = &all[i]
		}
	}
	sort.Strings(fitting)
	what := contentNames[content]
	if what == "" {
		what = content
	}
	alternatives := fmt.Sprintf("no storage of node %s holds %s", node, what)
	if len(fitting) > 0 {
		alternatives = fmt.Sprintf("storages of node %s that hold %s: %s", node, what, strings.Join(fitting, ", "))
	}
	switch {
	case found == nil:
		return &PreflightError{Field: field, Summary: "Storage not found",
			reason: fmt.Sprintf("storage %q does not exist on node %s (or the credentials lack Datastore.Audit on /storage/%s)", storage, node, storage),
			Detail: fmt.Sprintf("storage %q does not exist on node %s (or the credentials lack Datastore.Audit on "+
				"/storage/%s). Set %s to a storage the node has (%s).", storage, node, storage, field, alternatives)}
	case !found.has(content):
		contents := found.Content
		if contents == "" {
			contents = "none"
		}
		return &PreflightError{Field: field, Summary: "Storage cannot hold " + what,
			reason: fmt.Sprintf("storage %q on node %s cannot hold %s (content: %s)", storage, node, what, contents),
			Detail: fmt.Sprintf("storage %q on node %s cannot hold %s: its content types are %s, and %q is not "+
				"among them. Set %s to another storage (%s), or add %q to the storage's content "+
				"(Datacenter → Storage → Edit → Content).", storage, node, what, contents, content, field, alternatives, content)}
	case int(found.Enabled) == 0:
		return &PreflightError{Field: field, Summary: "Storage disabled",
			reason: fmt.Sprintf("storage %q is disabled on node %s", storage, node),
			Detail: fmt.Sprintf("storage %q is disabled on node %s. Enable it, or set %s to another storage (%s).",
				storage, node, field, alternatives)}
	}
	return nil
}

// CheckBackup checks that a backup volid is listed on its storage as seen
// from node; node "" tries every online node and returns the first that
// lists it. It returns that node and the backup. A storage that is not on
// the node or a backup that is not listed is a *PreflightError on field.
func (c *Client) CheckBackup(ctx context.Context, node, volid, field string) (string, *Backup, error) {
	storage, _, err := ParseVolID(volid)
	if err != nil {
		return "", nil, &PreflightError{Field: field, Summary: "Invalid backup volume ID", Detail: err.Error()}
	}
	vmid := 0
	if bn, err := ParseBackupVolID(volid); err == nil {
		vmid = bn.VMID
	}
	look := func(n string) (*Backup, error) {
		if err := c.CheckStorage(ctx, n, storage, "backup", field); err != nil {
			if pe := AsPreflight(err); pe != nil {
				pe.Summary = "Backup not found"
				pe.Detail = fmt.Sprintf("backup %s cannot be read from node %s: %s. Check the volume ID, or set "+
					"node to a node that has storage %s.", volid, n, pe.reason, storage)
			}
			return nil, err
		}
		list, err := c.listContent(ctx, n, storage, vmid)
		if err != nil {
			return nil, err
		}
		for i := range list {
			if list[i].VolID == volid {
				return &list[i], nil
			}
		}
		return nil, &PreflightError{Field: field, Summary: "Backup not found",
			Detail: fmt.Sprintf("backup %s does not exist: storage %s on node %s does not list it. Check the volume "+
				"ID (data.proxmoxapp_backups lists a guest's backups), or whether it was deleted or pruned.", volid, storage, n)}
	}
	if node != "" {
		b, err := look(node)
		return node, b, err
	}
	nodes, err := c.onlineNodes(ctx)
	if err != nil {
		return "", nil, err
	}
	var uncertain error
	for _, n := range nodes {
		b, err := look(n)
		if err == nil {
			return n, b, nil
		}
		if AsPreflight(err) == nil {
			uncertain = err
		}
	}
	if uncertain != nil || len(nodes) == 0 {
		return "", nil, fmt.Errorf("backup %s: no online node could be asked: %w", volid, uncertain)
	}
	return "", nil, &PreflightError{Field: field, Summary: "Backup not found",
		Detail: fmt.Sprintf("backup %s does not exist: no online node (%s) lists it on storage %s. Check the volume "+
			"ID (data.proxmoxapp_backups lists a guest's backups), or whether it was deleted or pruned.",
			volid, strings.Join(nodes, ", "), storage)}
}

// ExplainStorage says why a storage filter of a listing found nothing usable
// for guest vmid: the storage does not exist on the node, or holds no
// backups. node "" means the guest's node. It returns nil when the storage is
// fine or the node cannot be determined.
func (c *Client) ExplainStorage(ctx context.Context, vmid int, node, storage string) error {
	if node == "" {
		g, err := c.FindGuest(ctx, vmid)
		if err != nil {
			return nil //nolint:nilerr // no node to ask: nothing more to say than the listing did
		}
		node = g.Node
	}
	if err := c.CheckStorage(ctx, node, storage, "backup", "storage"); AsPreflight(err) != nil {
		return err
	}
	return nil
}
