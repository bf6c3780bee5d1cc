package pvesim

import (
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestCalendarEventNext(t *testing.T) {
	loc := time.UTC
	base := time.Date(2026, 11, 30, 7, 21, 33, 0, loc) // a Monday
	cases := []struct{ spec, want string }{
		{"02:30", "2026-12-01T02:30:00Z"},
		{"daily", "2026-12-01T00:00:00Z"},
		{"hourly", "2026-11-30T08:00:00Z"},
		{"*/15", "2026-11-30T07:30:00Z"},
		{"*:0/15", "2026-11-30T07:30:00Z"},
		{"sat 03:00", "2026-12-05T03:00:00Z"},
		{"mon..fri 21:00", "2026-11-30T21:00:00Z"},
		{"sat,sun 1:05", "2026-12-05T01:05:00Z"},
		{"fri..mon 00:00", "2026-12-04T00:00:00Z"},
		{"weekly", "2026-12-07T00:00:00Z"},
		{"monthly", "2026-12-01T00:00:00Z"},
		{"2027-01-01 00:00", "2027-01-01T00:00:00Z"},
		{"12-24 18:00", "2026-12-24T18:00:00Z"},
		{"8..17:00/30", "2026-11-30T08:00:00Z"},
		{"25:00", "2026-11-30T07:25:00Z"}, // minute 25 of every hour, as PVE reads it
		{"mon", "2026-12-07T00:00:00Z"},
		{"07:21:40", "2026-11-30T07:21:40Z"},
		{"quarterly", "2027-01-01T00:00:00Z"},
		{"21:00 UTC", "2026-11-30T21:00:00Z"},
	}
	for _, c := range cases {
		ev, err := parseCalendarEvent(c.spec)
		if err != nil {
			t.Errorf("%q: %v", c.spec, err)
			continue
		}
		got, ok := ev.next(base, loc)
		if !ok || got.Format(time.RFC3339) != c.want {
			t.Errorf("%q: next = %v (%v), want %s", c.spec, got.Format(time.RFC3339), ok, c.want)
		}
	}
	// a date that never comes again
	ev, _ := parseCalendarEvent("2020-01-01")
	if _, ok := ev.next(base, loc); ok {
		t.Error("2020-01-01 has a next run")
	}
	// in the node's zone, not UTC
	berlin, _ := time.LoadLocation("Europe/Berlin")
	ev, _ = parseCalendarEvent("02:00")
	got, _ := ev.next(base, berlin)
	if got.UTC().Format(time.RFC3339) != "2026-12-01T01:00:00Z" {
		t.Errorf("02:00 Berlin = %v", got.UTC())
	}
}

func TestCalendarEventErrors(t *testing.T) {
	cases := map[string]string{
		"":           "unable to parse calendar event - event is empty",
		"   ":        "unable to parse calendar event - event is empty",
		"foo":        `unable to parse calendar event at 'foo' - Context("weekday")`,
		"nightly":    `unable to parse calendar event at 'nightly' - Context("weekday")`,
		"99:99":      `unable to parse calendar event at '99:99' - Context("date or time specification")`,
		"02:00 junk": `unable to parse calendar event at ' junk' - Nom(Eof)`,
		"mon,foo":    `unable to parse calendar event at ',foo' - Nom(Eof)`,
		"0 2 * * *":  `unable to parse calendar event at ' 2 * * *' - Nom(Eof)`,
	}
	for spec, want := range cases {
		_, err := parseCalendarEvent(spec)
		if err == nil || err.Error() != want {
			t.Errorf("%q: err = %v, want %s", spec, err, want)
		}
	}
}

func TestBackupJobCRUD(t *testing.T) {
	s := startSim(t)
	tok := s.APIToken()
	r := call(t, s, "POST", "/cluster/backup", tok, url.Values{"id": {"nightly"}, "schedule": {"02:30"}, "vmid": {"100"},
		"storage": {"local"}, "prune-backups": {"keep-daily=7,keep-last=2"}, "comment": {"apps"}, "fleecing": {"enabled=1,storage=local-lvm"}})
	if r.code != 200 {
		t.Fatalf("create: %s %s", r.status, r.body)
	}
	r = call(t, s, "POST", "/cluster/backup", tok, url.Values{"id": {"nightly"}, "schedule": {"02:30"}, "vmid": {"100"}})
	if r.status != "500 Job 'nightly' already exists" {
		t.Errorf("duplicate: %s", r.status)
	}
	job := call(t, s, "GET", "/cluster/backup/nightly", tok, nil).data(t).(map[string]any)
	pb := job["prune-backups"].(map[string]any)
	if job["schedule"] != "02:30" || job["enabled"] != float64(1) || pb["keep-daily"] != float64(7) || pb["keep-last"] != float64(2) || job["type"] != "vzdump" {
		t.Errorf("job = %v", job)
	}
	if f := job["fleecing"].(map[string]any); f["storage"] != "local-lvm" || f["enabled"] != float64(1) {
		t.Errorf("fleecing = %v", f)
	}
	if _, ok := job["next-run"]; ok {
		t.Error("GET {id} has next-run; PVE reports it only in the list")
	}
	list := call(t, s, "GET", "/cluster/backup", tok, nil).data(t).([]any)
	if len(list) != 1 {
		t.Fatalf("list = %v", list)
	}
	next := int64(list[0].(map[string]any)["next-run"].(float64))
	ev, _ := parseCalendarEvent("02:30")
	want, _ := ev.next(s.Now(), s.loc)
	if d := next - want.Unix(); d < -1 || d > 1 {
		t.Errorf("next-run = %d, want %d", next, want.Unix())
	}

	// update: switch to all + exclude, drop the comment and the fleecing
	r = call(t, s, "PUT", "/cluster/backup/nightly", tok, url.Values{"all": {"1"}, "exclude": {"101"}, "delete": {"comment,fleecing"}})
	if r.code != 200 {
		t.Fatalf("update: %s %s", r.status, r.body)
	}
	job = call(t, s, "GET", "/cluster/backup/nightly", tok, nil).data(t).(map[string]any)
	if _, ok := job["vmid"]; ok || job["all"] != float64(1) || job["exclude"] != "101" {
		t.Errorf("after update: %v", job)
	}
	if _, ok := job["comment"]; ok {
		t.Error("comment survived delete")
	}
	if _, ok := job["fleecing"]; ok {
		t.Error("fleecing survived delete")
	}
	// errors PVE gives
	for _, c := range []struct {
		method, path string
		body         url.Values
		status, key  string
		msg          string
	}{
		{"POST", "/cluster/backup", url.Values{"id": {"x1"}, "schedule": {"nightly"}, "vmid": {"100"}}, "400 Parameter verification failed.", "schedule",
			`invalid format - invalid calendar event 'nightly' - unable to parse calendar event at 'nightly' - Context("weekday")`},
		{"POST", "/cluster/backup", url.Values{"id": {"x2"}, "schedule": {"02:00"}, "vmid": {"100"}, "all": {"1"}}, "400 Parameter verification failed.", "all", "option conflicts with option 'vmid'"},
		{"POST", "/cluster/backup", url.Values{"id": {"x3"}, "schedule": {"02:00"}, "vmid": {"100"}, "prune-backups": {"keep-dayly=3"}}, "400 Parameter verification failed.", "prune-backups", "invalid format - unknown property 'keep-dayly'"},
		{"POST", "/cluster/backup", url.Values{"id": {"x4"}, "vmid": {"100"}}, "400 Parameter verification failed.", "schedule", "neither 'starttime' nor 'schedule' were set"},
		{"POST", "/cluster/backup", url.Values{"id": {"x5"}, "schedule": {"02:00"}}, "400 Parameter verification failed.", "vmid", "property is missing"},
		{"POST", "/cluster/backup", url.Values{"id": {"x6"}, "schedule": {"02:00"}, "pool": {"nope"}}, "403 Permission check failed (pool 'nope' does not exist)", "", ""},
		{"PUT", "/cluster/backup/nightly", url.Values{"delete": {"schedule"}}, "400 Parameter verification failed.", "delete", "unknown option 'schedule'"},
		{"PUT", "/cluster/backup/nightly", url.Values{}, "500 no options specified", "", ""},
		{"PUT", "/cluster/backup/gone", url.Values{"comment": {"x"}}, "500 no such vzdump job", "", ""},
		{"GET", "/cluster/backup/gone", nil, "400 Parameter verification failed.", "id", "No such job 'gone'"},
		{"DELETE", "/cluster/backup/gone", nil, "400 Parameter verification failed.", "id", "No such job 'gone'"},
	} {
		r := call(t, s, c.method, c.path, tok, c.body)
		if r.status != c.status {
			t.Errorf("%s %s %v: %s %s", c.method, c.path, c.body, r.status, r.body)
			continue
		}
		if c.key != "" {
			errs, _ := r.json(t)["errors"].(map[string]any)
			if errs[c.key] != c.msg {
				t.Errorf("%s %v: errors = %v", c.path, c.body, errs)
			}
		}
	}
	// a read-only token may list but not create
	if r := call(t, s, "POST", "/cluster/backup", s.ReadOnlyToken(), url.Values{"schedule": {"02:00"}, "vmid": {"100"}}); r.code != 403 {
		t.Errorf("auditor create: %s", r.status)
	}
	if r := call(t, s, "DELETE", "/cluster/backup/nightly", tok, nil); r.code != 200 {
		t.Fatalf("delete: %s", r.status)
	}
	if l := call(t, s, "GET", "/cluster/backup", tok, nil).data(t).([]any); len(l) != 0 {
		t.Errorf("after delete: %v", l)
	}
}

func TestBackupJobCoverage(t *testing.T) {
	s := startSim(t)
	tok := s.APIToken()
	notCovered := func() []float64 {
		var out []float64
		for _, e := range call(t, s, "GET", "/cluster/backup-info/not-backed-up", tok, nil).data(t).([]any) {
			out = append(out, e.(map[string]any)["vmid"].(float64))
		}
		return out
	}
	if got := notCovered(); len(got) != 3 {
		t.Fatalf("no jobs: not-backed-up = %v", got)
	}
	call(t, s, "POST", "/cluster/backup", tok, url.Values{"id": {"j1"}, "schedule": {"02:00"}, "vmid": {"100,999"}, "enabled": {"0"}})
	if got := notCovered(); len(got) != 2 || got[0] != 101 || got[1] != 200 {
		t.Errorf("after j1 (disabled still counts): %v", got)
	}
	call(t, s, "POST", "/cluster/backup", tok, url.Values{"id": {"j2"}, "schedule": {"02:00"}, "all": {"1"}, "node": {"pve1"}})
	if got := notCovered(); len(got) != 1 || got[0] != 101 {
		t.Errorf("after j2 (pve1 only): %v", got)
	}
	tree := call(t, s, "GET", "/cluster/backup/j1/included_volumes", tok, nil).data(t).(map[string]any)
	ch := tree["children"].([]any)
	if len(ch) != 2 {
		t.Fatalf("included = %v", ch)
	}
	g := ch[0].(map[string]any)
	vol := g["children"].([]any)[0].(map[string]any)
	if g["id"] != float64(100) || g["type"] != "lxc" || g["name"] != "web" || vol["id"] != "100:rootfs" || vol["name"] != "local-lvm:vm-100-disk-0" || vol["included"] != float64(1) || vol["reason"] != "rootfs" {
		t.Errorf("guest 100 = %v", g)
	}
	if u := ch[1].(map[string]any); u["id"] != float64(999) || u["type"] != "unknown" {
		t.Errorf("orphan = %v", u)
	}
	tree = call(t, s, "GET", "/cluster/backup/j2/included_volumes", tok, nil).data(t).(map[string]any)
	ch = tree["children"].([]any)
	if len(ch) != 2 || ch[1].(map[string]any)["id"] != float64(200) {
		t.Fatalf("j2 included = %v", ch)
	}
	if v := ch[1].(map[string]any)["children"].([]any)[0].(map[string]any); v["id"] != "200:scsi0" || v["reason"] != "backup=yes" {
		t.Errorf("vm disk = %v", v)
	}
}

// The scheduler runs a due job as a vzdump task owned by root@pam, once per
// due time, and the archive lands on the job's storage with its retention.
func TestBackupJobSchedulerRuns(t *testing.T) {
	s := startSim(t)
	tok := s.APIToken()
	day := time.Date(2030, 3, 4, 2, 29, 0, 0, s.loc)
	s.SetClock(day)
	r := call(t, s, "POST", "/cluster/backup", tok, url.Values{"id": {"nightly"}, "schedule": {"02:30"}, "vmid": {"100,101"},
		"storage": {"nas"}, "prune-backups": {"keep-last=1"}, "notes-template": {"{{guestname}} nightly"}})
	if r.code != 200 {
		t.Fatalf("create: %s %s", r.status, r.body)
	}
	if upids := s.AdvanceClock(30 * time.Second); len(upids) != 0 {
		t.Fatalf("ran before 02:30: %v", upids)
	}
	upids := s.AdvanceClock(45 * time.Second)
	if len(upids) != 2 {
		t.Fatalf("at 02:30: upids = %v (one per node with a guest)", upids)
	}
	for _, u := range upids {
		if !strings.HasSuffix(u, ":vzdump:"+map[bool]string{true: "100", false: "101"}[strings.Contains(u, ":pve1:")]+":root@pam:") {
			t.Errorf("upid %s", u)
		}
		st := waitTask(t, s, u)
		if st["exitstatus"] != "OK" {
			t.Errorf("%s: %v %v", u, st, taskLog(t, s, u))
		}
		lines := taskLog(t, s, u)
		if !strings.Contains(lines[0], "starting new backup job: vzdump 100 101 --notes-template '{{guestname}} nightly' --prune-backups keep-last=1 --quiet 1 --storage nas") {
			t.Errorf("first line %q", lines[0])
		}
		if strings.Contains(lines[0], "job-id") {
			t.Error("PVE's command line leaves job-id out")
		}
	}
	files, _ := filepath.Glob(filepath.Join(s.StorageDumpDir("pve1", "nas"), "vzdump-lxc-*.tar"))
	if len(files) != 2 {
		t.Errorf("archives on nas: %v", files)
	}
	if b, err := os.ReadFile(files[0] + ".notes"); err != nil || !strings.HasPrefix(string(b), "web nightly") && !strings.HasPrefix(string(b), "db nightly") {
		t.Errorf("notes: %q %v", b, err)
	}
	// the same day: nothing more; the next day: again, and keep-last=1 prunes
	if u := s.AdvanceClock(time.Hour); len(u) != 0 {
		t.Errorf("ran twice: %v", u)
	}
	upids = s.AdvanceClock(24 * time.Hour)
	if len(upids) != 2 {
		t.Fatalf("next day: %v", upids)
	}
	for _, u := range upids {
		waitTask(t, s, u)
	}
	files, _ = filepath.Glob(filepath.Join(s.StorageDumpDir("pve1", "nas"), "vzdump-lxc-100-*.tar"))
	if len(files) != 1 {
		t.Errorf("after keep-last=1: %v", files)
	}
	// disabled: not run; RunJobNow still runs it
	call(t, s, "PUT", "/cluster/backup/nightly", tok, url.Values{"enabled": {"0"}})
	if u := s.AdvanceClock(24 * time.Hour); len(u) != 0 {
		t.Errorf("disabled job ran: %v", u)
	}
	u, err := s.RunJobNow("nightly")
	if err != nil || len(u) != 2 {
		t.Fatalf("RunJobNow: %v %v", u, err)
	}
	for _, x := range u {
		waitTask(t, s, x)
	}
}

func TestBackupJobControlAPI(t *testing.T) {
	s := startSim(t)
	if r := call(t, s, "POST", "/cluster/backup", s.APIToken(), url.Values{"id": {"j1"}, "schedule": {"hourly"}, "vmid": {"200"}, "storage": {"local"}}); r.code != 200 {
		t.Fatalf("create: %s %s", r.status, r.body)
	}
	post := func(path, body string) map[string]any {
		c := httpClient(t, s)
		res, err := c.Post(s.Endpoint()+strings.TrimPrefix(path, "/"), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		r := &resp{code: res.StatusCode, body: b}
		if r.code != 200 {
			t.Fatalf("%s: %d %s", path, r.code, r.body)
		}
		return r.json(t)
	}
	out := post("/_sim/jobs/run", `{"id":"j1"}`)
	upids := out["upids"].([]any)
	if len(upids) != 1 || !strings.Contains(upids[0].(string), ":vzdump:200:root@pam:") {
		t.Fatalf("run: %v", out)
	}
	waitTask(t, s, upids[0].(string))
	before := s.Now()
	out = post("/_sim/clock", `{"advance":"2h"}`)
	if now, _ := time.Parse(time.RFC3339, out["now"].(string)); now.Sub(before) < 2*time.Hour-time.Second {
		t.Errorf("clock: %v → %v", before, now)
	}
	if n := len(out["upids"].([]any)); n != 1 {
		t.Errorf("hourly job after 2h: %d runs, want 1 (pvescheduler does not catch up)", n)
	}
}

// A pool-selected job backs up the pool's members on each node.
func TestBackupJobPoolSelection(t *testing.T) {
	s := startSim(t)
	s.SetPool("apps", 100, 200)
	if r := call(t, s, "POST", "/cluster/backup", s.APIToken(), url.Values{"id": {"pooljob"}, "schedule": {"daily"}, "pool": {"apps"}, "storage": {"local"}}); r.code != 200 {
		t.Fatalf("create: %s %s", r.status, r.body)
	}
	upids, err := s.RunJobNow("pooljob")
	if err != nil || len(upids) != 1 || !strings.Contains(upids[0], ":pve1:") || !strings.HasSuffix(upids[0], ":vzdump::root@pam:") {
		t.Fatalf("run: %v %v", upids, err)
	}
	waitTask(t, s, upids[0])
	lines := strings.Join(taskLog(t, s, upids[0]), "\n")
	for _, want := range []string{"--pool apps", "Finished Backup of VM 100 ", "Finished Backup of VM 200 "} {
		if !strings.Contains(lines, want) {
			t.Errorf("log lacks %q:\n%s", want, lines)
		}
	}
	notCovered := call(t, s, "GET", "/cluster/backup-info/not-backed-up", s.APIToken(), nil).data(t).([]any)
	if len(notCovered) != 1 || notCovered[0].(map[string]any)["vmid"] != float64(101) {
		t.Errorf("not-backed-up = %v", notCovered)
	}
}

// The deprecated starttime/dow become a schedule; a job without id gets a UUID.
func TestBackupJobStarttimeAndGeneratedID(t *testing.T) {
	s := startSim(t)
	tok := s.APIToken()
	if r := call(t, s, "POST", "/cluster/backup", tok, url.Values{"starttime": {"21:15"}, "dow": {"mon,tue"}, "vmid": {"100"}}); r.code != 200 {
		t.Fatalf("create: %s %s", r.status, r.body)
	}
	if r := call(t, s, "POST", "/cluster/backup", tok, url.Values{"id": {"both"}, "starttime": {"21:15"}, "schedule": {"daily"}, "vmid": {"100"}}); r.status != "400 Parameter verification failed." {
		t.Errorf("starttime+schedule: %s", r.status)
	}
	list := call(t, s, "GET", "/cluster/backup", tok, nil).data(t).([]any)
	if len(list) != 1 {
		t.Fatalf("list = %v", list)
	}
	j := list[0].(map[string]any)
	if j["schedule"] != "mon,tue 21:15" || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-`).MatchString(j["id"].(string)) {
		t.Errorf("job = %v", j)
	}
	if _, ok := j["starttime"]; ok {
		t.Error("starttime kept")
	}
	// a pool replaces the vmid selection
	s.SetPool("apps", 101)
	if r := call(t, s, "PUT", "/cluster/backup/"+j["id"].(string), tok, url.Values{"pool": {"apps"}}); r.code != 200 {
		t.Fatalf("update: %s %s", r.status, r.body)
	}
	got := call(t, s, "GET", "/cluster/backup/"+j["id"].(string), tok, nil).data(t).(map[string]any)
	if _, ok := got["vmid"]; ok || got["pool"] != "apps" {
		t.Errorf("after pool update: %v", got)
	}
}
