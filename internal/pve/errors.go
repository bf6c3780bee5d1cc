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
	if m := strings.TrimSpace(e.Message); m != "" && !strings.Contains(e.statusText(), FirstLine(m)) {
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

// FirstLine is the first line of s, trimmed: what PVE shows of a notes text
// or a status line of a multi-line message.
func FirstLine(s string) string {
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

// The kinds of failure callers act on, checked with errors.Is. Errors of the
// client carry them (newKindError); PVE's own answers are classified by
// APIError.Is and TaskError.Is from their status and message.
var (
	ErrNotFound  = errors.New("does not exist")
	ErrLocked    = errors.New("locked")
	ErrForbidden = errors.New("missing privilege")
	ErrOffline   = errors.New("not reachable")
	ErrProtected = errors.New("protected")
)

// kindError is an error of one kind (ErrNotFound, ...) with its own message,
// keeping its cause for errors.As.
type kindError struct {
	kind error
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

func (e *kindError) Is(target error) bool { return target == e.kind }

func newKindError(kind error, err error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...), err: err}
}

// How PVE words each kind in a status line, a JSON message or a task's exit
// status and ERROR lines.
var (
	reNotFoundMsg  = regexp.MustCompile(`(?i)configuration file '[^']*' does not exist|no such (task|volume|file|vm|ct)\b|unable to find (vm|ct)`)
	reLockedMsg    = regexp.MustCompile(`(?i)\b(CT|VM) is locked \(|can't lock file '[^']*' - got timeout|can't acquire lock`)
	reForbiddenMsg = regexp.MustCompile(`(?i)permission check failed|permission denied`)
	reOfflineMsg   = regexp.MustCompile(`(?i)errors during connection establishment|no route to host|connection refused|seems to be offline|is not online|not available on node|unable to get remote IP address`)
	reProtectedMsg = regexp.MustCompile(`(?i)cannot remove protected (volume|snapshot)|protection mode enabled`)
)

// Is classifies an HTTP error answer: errors.Is(err, ErrNotFound) and so on.
func (e *APIError) Is(target error) bool {
	texts := []string{e.Status, e.Message}
	switch target {
	case ErrNotFound:
		return e.StatusCode == 404 || ((e.StatusCode == 500 || e.StatusCode == 400) && matchAny(reNotFoundMsg, texts))
	case ErrForbidden:
		return e.StatusCode == 403
	case ErrOffline:
		return e.StatusCode == 595 || e.StatusCode == 596 || matchAny(reOfflineMsg, texts)
	case ErrLocked:
		return matchAny(reLockedMsg, texts)
	case ErrProtected:
		return matchAny(reProtectedMsg, texts)
	}
	return false
}

// Is classifies a failed task by its exit status and, since vzdump reports
// per-guest causes only as "job errors" plus ERROR lines, its log tail.
func (e *TaskError) Is(target error) bool {
	texts := []string{e.ExitStatus}
	for _, l := range e.LogTail {
		if strings.HasPrefix(l, "ERROR: ") || strings.HasPrefix(l, "TASK ERROR: ") {
			texts = append(texts, l)
		}
	}
	switch target {
	case ErrForbidden:
		return reForbiddenMsg.MatchString(e.ExitStatus)
	case ErrLocked:
		return matchAny(reLockedMsg, texts)
	case ErrProtected:
		return matchAny(reProtectedMsg, texts)
	}
	return false
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
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsForbidden reports a missing privilege (HTTP 403, a task failing its
// permission check, or a check of the client's own).
func IsForbidden(err error) bool { return errors.Is(err, ErrForbidden) }

// IsProtected reports a backup (or guest) that PVE refuses to remove or
// overwrite because it is protected.
func IsProtected(err error) bool { return errors.Is(err, ErrProtected) }
