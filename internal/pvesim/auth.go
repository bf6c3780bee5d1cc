package pvesim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type authInfo struct {
	authid string // "root@pam" or "root@pam!terraform"
	user   string // "root@pam"
	tok    *token
	ticket bool
}

var reTokenHeader = regexp.MustCompile(`(?:^|\s)PVEAPIToken(?:=| )([^;]*)`)
var reCookieHeader = regexp.MustCompile(`(?:^|\s)PVEAuthCookie=([^;]*)`)

func unauthorized(msg string) *apiError { return &apiError{status: 401, msg: msg, empty: true} }

func (s *Sim) authenticate(r *http.Request) (*authInfo, error) {
	authz := r.Header.Get("Authorization")
	if m := reTokenHeader.FindStringSubmatch(authz); m != nil {
		val, err := url.PathUnescape(strings.TrimSpace(m[1]))
		if err != nil {
			val = m[1]
		}
		i := strings.LastIndex(val, "=")
		if i < 0 {
			return nil, unauthorized("Authentication failed!")
		}
		id, secret := val[:i], val[i+1:]
		s.mu.Lock()
		t := s.tokens[id]
		u := (*user)(nil)
		if t != nil {
			u = s.users[t.user]
		}
		s.mu.Unlock()
		if t == nil || u == nil || !hmac.Equal([]byte(t.secret), []byte(secret)) {
			return nil, unauthorized("Authentication failed!")
		}
		return &authInfo{authid: id, user: t.user, tok: t}, nil
	}
	ticket := ""
	if c, err := r.Cookie("PVEAuthCookie"); err == nil {
		ticket = c.Value
	} else if m := reCookieHeader.FindStringSubmatch(authz); m != nil {
		ticket = m[1]
	}
	if ticket == "" {
		return nil, unauthorized("No ticket")
	}
	// uri_unescape: %XX only; '+' stays '+' (base64 signatures contain it)
	if u, err := url.PathUnescape(ticket); err == nil {
		ticket = u
	}
	userid, ok := s.verifyTicket(ticket)
	if !ok {
		return nil, unauthorized("Authentication failed!")
	}
	if r.Method != http.MethodGet {
		if !s.verifyCSRF(r.Header.Get("CSRFPreventionToken"), userid) {
			return nil, unauthorized("Permission denied - invalid csrf token")
		}
	}
	return &authInfo{authid: userid, user: userid, ticket: true}, nil
}

func (s *Sim) sign(data string) string {
	m := hmac.New(sha256.New, s.ticketKey)
	m.Write([]byte(data))
	return base64.RawStdEncoding.EncodeToString(m.Sum(nil))
}

func (s *Sim) makeTicket(userid string, t time.Time) (ticket, csrf string) {
	ts := fmt.Sprintf("%08X", t.Unix())
	plain := "PVE:" + userid + ":" + ts
	ticket = plain + "::" + s.sign(plain)
	csrf = ts + ":" + s.sign("csrf:"+ts+":"+userid)
	return
}

func (s *Sim) verifyTicket(ticket string) (string, bool) {
	plain, sig, ok := strings.Cut(ticket, "::")
	if !ok || !hmac.Equal([]byte(s.sign(plain)), []byte(sig)) {
		return "", false
	}
	f := strings.Split(plain, ":")
	if len(f) != 3 || f[0] != "PVE" {
		return "", false
	}
	ts, err := strconv.ParseInt(f[2], 16, 64)
	if err != nil {
		return "", false
	}
	age := time.Since(time.Unix(ts, 0))
	if age < -5*time.Minute || age > time.Duration(s.ticketLife.Load()) {
		return "", false
	}
	s.mu.Lock()
	_, exists := s.users[f[1]]
	s.mu.Unlock()
	return f[1], exists
}

func (s *Sim) verifyCSRF(tok, userid string) bool {
	ts, sig, ok := strings.Cut(tok, ":")
	if !ok {
		return false
	}
	if !hmac.Equal([]byte(s.sign("csrf:"+ts+":"+userid)), []byte(sig)) {
		return false
	}
	n, err := strconv.ParseInt(ts, 16, 64)
	if err != nil {
		return false
	}
	age := time.Since(time.Unix(n, 0))
	return age > -5*time.Minute && age <= time.Duration(s.ticketLife.Load())
}

// --- privileges ------------------------------------------------------------

// aclPrivs evaluates ACL entries for path: the deepest matching entry wins.
func aclPrivs(acl []ACLEntry, path string) map[string]bool {
	chain := []string{"/"}
	parts := splitPath(path)
	for i := range parts {
		chain = append(chain, "/"+strings.Join(parts[:i+1], "/"))
	}
	var cur map[string]bool
	for _, p := range chain {
		var merged map[string]bool
		for _, e := range acl {
			ep := "/" + strings.Join(splitPath(e.Path), "/")
			if ep != p {
				continue
			}
			if e.NoPropagate && p != chain[len(chain)-1] {
				continue
			}
			if merged == nil {
				merged = map[string]bool{}
			}
			for k := range expandACL(e) {
				merged[k] = true
			}
		}
		if merged != nil {
			cur = merged
		}
	}
	if cur == nil {
		cur = map[string]bool{}
	}
	return cur
}

func (s *Sim) privs(a *authInfo, path string) map[string]bool {
	if a == nil {
		return map[string]bool{}
	}
	all := func() map[string]bool {
		m := map[string]bool{}
		for _, p := range allPrivs {
			m[p] = true
		}
		return m
	}
	s.mu.Lock()
	u := s.users[a.user]
	s.mu.Unlock()
	var up map[string]bool
	if a.user == "root@pam" {
		up = all()
	} else if u != nil {
		up = aclPrivs(u.acl, path)
	} else {
		up = map[string]bool{}
	}
	if a.tok == nil || !a.tok.privsep {
		return up
	}
	tp := aclPrivs(a.tok.acl, path)
	for k := range tp {
		if !up[k] {
			delete(tp, k)
		}
	}
	return tp
}

func (s *Sim) can(a *authInfo, path string, priv string) bool {
	return s.privs(a, path)[priv]
}

// checkAny returns a 403 unless the caller has one of privs on path.
func (s *Sim) checkAny(a *authInfo, path string, privs ...string) error {
	p := s.privs(a, path)
	for _, x := range privs {
		if p[x] {
			return nil
		}
	}
	return permErr(path, privs...)
}

// checkAll returns a 403 naming the first missing privilege.
func (s *Sim) checkAll(a *authInfo, path string, privs ...string) error {
	p := s.privs(a, path)
	for _, x := range privs {
		if !p[x] {
			return permErr(path, x)
		}
	}
	return nil
}

// volumeAccess is PVE::Storage::check_volume_access without a vmid (as the
// content GET/PUT, the listing and extractconfig call it): Datastore.Allocate
// on the storage; or, for ISOs and templates, Datastore.AllocateSpace or
// Datastore.Audit; for a guest's backup, Datastore.AllocateSpace plus
// VM.Backup on the guest; for a guest's disk, Datastore.Audit plus
// VM.Config.Disk. Anything else is "missing privileges to access <volid>".
func (s *Sim) volumeAccess(a *authInfo, storageID string, owner int, vtype, volid string) error {
	sp := "/storage/" + storageID
	if s.can(a, sp, "Datastore.Allocate") {
		return nil
	}
	switch {
	case vtype == "iso" || vtype == "vztmpl" || vtype == "import":
		return s.checkAny(a, sp, "Datastore.AllocateSpace", "Datastore.Audit")
	case vtype == "backup" && owner > 0:
		if err := s.checkAll(a, sp, "Datastore.AllocateSpace"); err != nil {
			return err
		}
		return s.checkAll(a, fmt.Sprintf("/vms/%d", owner), "VM.Backup")
	case (vtype == "images" || vtype == "rootdir") && owner > 0:
		if err := s.checkAll(a, sp, "Datastore.Audit"); err != nil {
			return err
		}
		return s.checkAll(a, fmt.Sprintf("/vms/%d", owner), "VM.Config.Disk")
	}
	return err500("missing privileges to access %s", volid)
}

// --- /access/ticket --------------------------------------------------------

func (s *Sim) hTicketPost(rq *request) (any, error) {
	username := rq.p.str("username")
	if !strings.Contains(username, "@") {
		realm := rq.p.str("realm")
		if realm == "" {
			realm = "pam"
		}
		username += "@" + realm
	}
	pw := rq.p.str("password")
	s.mu.Lock()
	u := s.users[username]
	s.mu.Unlock()
	ok := false
	if u != nil {
		if u.password != "" && hmac.Equal([]byte(u.password), []byte(pw)) {
			ok = true
		} else if uid, valid := s.verifyTicket(pw); valid && uid == username {
			ok = true
		}
	}
	if !ok {
		return nil, errf(401, "authentication failure")
	}
	ticket, csrf := s.makeTicket(username, time.Now())
	a := &authInfo{authid: username, user: username, ticket: true}
	caps := map[string]map[string]int{}
	for name, path := range map[string]string{"vms": "/vms", "storage": "/storage", "nodes": "/nodes", "access": "/access", "dc": "/", "sdn": "/sdn"} {
		m := map[string]int{}
		for p := range s.privs(a, path) {
			m[p] = 1
		}
		caps[name] = m
	}
	return map[string]any{
		"username":            username,
		"ticket":              ticket,
		"CSRFPreventionToken": csrf,
		"clustername":         s.cfg.ClusterName,
		"cap":                 caps,
	}, nil
}
