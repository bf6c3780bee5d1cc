package pvesim

import (
	"net/url"
	"testing"
)

// TestPermissionsEndpoint pins GET /access/permissions: a path's effective
// privileges as "privilege" => 1, {} where there are none, the whole tree
// without a path, and Sys.Audit on /access to read another user's.
func TestPermissionsEndpoint(t *testing.T) {
	s := startSim(t)
	ro := s.ReadOnlyToken()
	r := call(t, s, "GET", "/access/permissions", ro, url.Values{"path": {"/vms/100"}})
	d, ok := r.data(t).(map[string]any)
	vm, _ := d["/vms/100"].(map[string]any)
	if !ok || len(d) != 1 || vm["VM.Audit"] != float64(1) || vm["VM.Backup"] != nil {
		t.Errorf("read-only token on /vms/100: %s", r.body)
	}
	r = call(t, s, "GET", "/access/permissions", ro, nil)
	d, _ = r.data(t).(map[string]any)
	if st, _ := d["/storage"].(map[string]any); st["Datastore.Audit"] != float64(1) || st["Datastore.AllocateSpace"] != nil {
		t.Errorf("read-only token, whole tree: %s", r.body)
	}
	r = call(t, s, "GET", "/access/permissions", s.APIToken(), url.Values{"path": {"/storage/local"}})
	d, _ = r.data(t).(map[string]any)
	if st, _ := d["/storage/local"].(map[string]any); st["Datastore.Allocate"] != float64(1) {
		t.Errorf("root token: %s", r.body)
	}
	if r := call(t, s, "GET", "/access/permissions", ro, url.Values{"userid": {"root@pam"}}); r.status != "403 Permission check failed (/access, Sys.Audit)" {
		t.Errorf("another user's permissions without Sys.Audit: %s", r.status)
	}
}
