package pvesim

import (
	"sort"
	"strings"
)

// GET /access/permissions: the caller's effective privileges, for one path
// ("path" given) or for the paths of the ACL tree. A caller may read its own
// and its tokens' permissions; anyone else's need Sys.Audit on /access
// (REFERENCE.md 8.6).
func (s *Sim) hPermissions(rq *request) (any, error) {
	a := rq.auth
	who := rq.p.str("userid")
	if who != "" && who != a.authid && !strings.HasPrefix(who, a.user+"!") {
		if err := s.checkAll(a, "/access", "Sys.Audit"); err != nil {
			return nil, err
		}
	}
	target := a
	if who != "" && who != a.authid {
		t, err := s.authInfoFor(who)
		if err != nil {
			return nil, err
		}
		target = t
	}
	paths := []string{rq.p.str("path")}
	if paths[0] == "" {
		paths = s.aclTreePaths(target)
	}
	out := map[string]map[string]int{}
	for _, p := range paths {
		privs := s.privs(target, p)
		if len(privs) == 0 {
			continue
		}
		m := map[string]int{}
		for k, ok := range privs {
			if ok {
				m[k] = 1
			}
		}
		out[p] = m
	}
	return out, nil
}

// aclTreePaths are the paths get_effective_permissions reports: the
// top-level ones and every path an ACL entry of the user or token names.
func (s *Sim) aclTreePaths(a *authInfo) []string {
	seen := map[string]bool{"/": true, "/access": true, "/nodes": true, "/storage": true, "/vms": true, "/pool": true, "/sdn": true}
	s.mu.Lock()
	if u := s.users[a.user]; u != nil {
		for _, e := range u.acl {
			seen[e.Path] = true
		}
	}
	if a.tok != nil {
		for _, e := range a.tok.acl {
			seen[e.Path] = true
		}
	}
	s.mu.Unlock()
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// authInfoFor is the identity of a user or token by id, for permission dumps.
func (s *Sim) authInfoFor(id string) (*authInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok := s.tokens[id]; tok != nil {
		return &authInfo{authid: id, user: tok.user, tok: tok}, nil
	}
	if s.users[id] != nil {
		return &authInfo{authid: id, user: id}, nil
	}
	return nil, paramErr1("userid", "no such user ('"+id+"')")
}
