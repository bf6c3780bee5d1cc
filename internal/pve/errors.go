package pve

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// APIError is an HTTP error answer of the PVE API. It keeps what go-proxmox
// drops: the status code, PVE's reason phrase (where PVE puts its error
// text) and the JSON "message" and "errors" of newer servers.
type APIError struct {
	Method     string
	Path       string // API path below /api2/json, with the query string
	StatusCode int
	// Status is the full status text after the protocol, e.g.
	// "500 CT is locked (backup)".
	Status  string
	Message string            // JSON "message", trimmed; "" on older servers
	Errors  map[string]string // JSON "errors" (parameter errors on 400)
}

// Error gives "<METHOD> <path>: HTTP 500 CT is locked (backup)", followed by the
// JSON message when it says more than the status line, and the parameter errors.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %s", e.Method, e.Path, e.statusText())
	if m := strings.TrimSpace(e.Message); m != "" && !strings.Contains(e.statusText(), firstLine(m)) {
		fmt.Fprintf(&b, ": %s", m)
	} else if m != "" && strings.Contains(m, "\n") {
		// the status line keeps only the first line of a multi-line message
		fmt.Fprintf(&b, " (%s)", strings.ReplaceAll(m, "\n", " "))
	}
	if len(e.Errors) > 0 {
		keys := make([]string, 0, len(e.Errors))
		for k := range e.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %s", k, strings.TrimSpace(e.Errors[k])))
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(parts, "; "))
	}
	return b.String()
}

func (e *APIError) statusText() string {
	s := strings.TrimSpace(e.Status)
	if s == "" {
		s = fmt.Sprintf("%d", e.StatusCode)
	}
	if !strings.HasPrefix(s, fmt.Sprintf("%d", e.StatusCode)) {
		s = fmt.Sprintf("%d %s", e.StatusCode, s)
	}
	return s
}

// Reason is PVE's error text: the JSON message when present, else the reason
// phrase of the status line.
func (e *APIError) Reason() string {
	if m := strings.TrimSpace(e.Message); m != "" {
		return m
	}
	s := strings.TrimSpace(e.Status)
	if i := strings.IndexByte(s, ' '); i >= 0 && strings.HasPrefix(s, fmt.Sprintf("%d", e.StatusCode)) {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return strings.TrimSpace(s)
}

// TaskError is a PVE task that ended with an exit status other than OK or
// WARNINGS: N.
type TaskError struct {
	UPID       string
	Node       string
	Type       string
	ExitStatus string
	LogTail    []string // the last lines of the task log
}

func (e *TaskError) Error() string {
	var b strings.Builder
	typ := e.Type
	if typ == "" {
		typ = "task"
	}
	fmt.Fprintf(&b, "%s task %s on node %s failed: %s", typ, e.UPID, e.Node, e.ExitStatus)
	if len(e.LogTail) > 0 {
		b.WriteString("\nlast lines of the task log:")
		for _, l := range e.LogTail {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// RestoreError is a failed Restore: which step failed, in what state the guest
// was left, and the safety backup that holds its state from before.
type RestoreError struct {
	Step              string // "check backup", "check guest", "safety backup", "shutdown", "restore", "start", ...
	VMID              int
	Backup            string // the volid that was being restored
	GuestState        string // running, stopped, absent, not created, unknown
	SafetyBackupVolID string
	PreviousStatus    string // the guest's power state before the restore, "" when not read yet
	Node              string
	Err               error
}

func (e *RestoreError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "restore failed at step %q", e.Step)
	if e.Backup != "" || e.VMID != 0 {
		fmt.Fprintf(&b, " (restoring %s onto guest %d)", e.Backup, e.VMID)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.GuestState != "" {
		fmt.Fprintf(&b, "\nthe guest was left %s", describeState(e.GuestState))
	}
	if e.SafetyBackupVolID != "" {
		fmt.Fprintf(&b, "\nthe guest's state from before the restore is in the safety backup %s; restore it from there to recover "+
			"(or apply again: the next run restores again and keeps that safety backup)", e.SafetyBackupVolID)
	} else {
		b.WriteString("\nno safety backup was taken")
	}
	return b.String()
}

func describeState(s string) string {
	switch s {
	case "absent":
		return "absent (it no longer exists)"
	case "not created":
		return "not created (it did not exist before this restore)"
	case "unknown":
		return "in an unknown state (its status could not be read)"
	case "no disks":
		return "with a temporary config and no disks (PVE does not clean up a failed VM restore; its old disks are gone)"
	default:
		return s
	}
}

func (e *RestoreError) Unwrap() error { return e.Err }

// kindError marks an error of one kind (not found, locked, ...) while keeping
// the cause for errors.As / errors.Is.
type kindError struct {
	kind string
	msg  string
	err  error
}

func (e *kindError) Error() string {
	if e.msg == "" && e.err != nil {
		return e.err.Error()
	}
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *kindError) Unwrap() error { return e.err }

const (
	kindNotFound  = "not found"
	kindLocked    = "locked"
	kindForbidden = "forbidden"
	kindOffline   = "offline"
	kindProtected = "protected"
)

func newKindError(kind string, err error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...), err: err}
}

func hasKind(err error, kind string) bool {
	for err != nil {
		if k, ok := err.(*kindError); ok && k.kind == kind {
			return true
		}
		switch x := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range x.Unwrap() {
				if hasKind(e, kind) {
					return true
				}
			}
			return false
		case interface{ Unwrap() error }:
			err = x.Unwrap()
		default:
			return false
		}
	}
	return false
}

var (
	reNotFoundMsg  = regexp.MustCompile(`(?i)configuration file '[^']*' does not exist|no such (task|volume|file|vm|ct)\b|unable to find (vm|ct)`)
	reLockedMsg    = regexp.MustCompile(`(?i)\b(CT|VM) is locked \(|can't lock file '[^']*' - got timeout|can't acquire lock`)
	reForbiddenMsg = regexp.MustCompile(`(?i)permission check failed|permission denied`)
	reOfflineMsg   = regexp.MustCompile(`(?i)errors during connection establishment|no route to host|connection refused|seems to be offline|is not online|not available on node|unable to get remote IP address`)
	reProtectedMsg = regexp.MustCompile(`(?i)cannot remove protected (volume|snapshot)|protection mode enabled`)
)

// errorText is the PVE message of an API or task error in the chain, "" when
// there is none.
func errorTexts(err error) []string {
	var out []string
	var ae *APIError
	if errors.As(err, &ae) {
		out = append(out, ae.Status, ae.Message)
	}
	var te *TaskError
	if errors.As(err, &te) {
		out = append(out, te.ExitStatus)
		// vzdump reports per-guest causes only as "job errors" + ERROR: lines
		for _, l := range te.LogTail {
			if strings.HasPrefix(l, "ERROR: ") || strings.HasPrefix(l, "TASK ERROR: ") {
				out = append(out, l)
			}
		}
	}
	return out
}

func matchAny(re *regexp.Regexp, texts []string) bool {
	for _, t := range texts {
		if t != "" && re.MatchString(t) {
			return true
		}
	}
	return false
}

// IsNotFound reports a guest, backup or task that does not exist.
func IsNotFound(err error) bool {
	if err == nil {
		return false
	}
	if hasKind(err, kindNotFound) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.StatusCode == 404 {
			return true
		}
		if ae.StatusCode == 500 || ae.StatusCode == 400 {
			return matchAny(reNotFoundMsg, []string{ae.Status, ae.Message})
		}
	}
	return false
}

// IsLocked reports a guest locked by a backup, snapshot, migration, ... or a
// lock that could not be acquired.
func IsLocked(err error) bool {
	if err == nil {
		return false
	}
	return hasKind(err, kindLocked) || matchAny(reLockedMsg, errorTexts(err))
}

// IsForbidden reports a missing privilege (HTTP 403, or a task failing its
// permission check).
func IsForbidden(err error) bool {
	if err == nil {
		return false
	}
	if hasKind(err, kindForbidden) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.StatusCode == 403 {
		return true
	}
	var te *TaskError
	if errors.As(err, &te) && reForbiddenMsg.MatchString(te.ExitStatus) {
		return true
	}
	return false
}

// IsOffline reports a node (or a proxied connection to it) that cannot be reached.
func IsOffline(err error) bool {
	if err == nil {
		return false
	}
	if hasKind(err, kindOffline) {
		return true
	}
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.StatusCode == 595 || ae.StatusCode == 596 {
			return true
		}
		return matchAny(reOfflineMsg, []string{ae.Status, ae.Message})
	}
	return false
}

// IsProtected reports a backup (or guest) that PVE refuses to remove or
// overwrite because it is protected.
func IsProtected(err error) bool {
	if err == nil {
		return false
	}
	return hasKind(err, kindProtected) || matchAny(reProtectedMsg, errorTexts(err))
}
