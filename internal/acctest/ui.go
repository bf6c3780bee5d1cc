package acctest

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

// UIMessage is one line of Terraform's machine-readable UI (-json).
type UIMessage struct {
	Level      string `json:"@level"`
	Message    string `json:"@message"`
	Type       string `json:"type"`
	Diagnostic *struct {
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
		Detail   string `json:"detail"`
	} `json:"diagnostic,omitempty"`
	Hook struct {
		// Action is an action's address object in action hooks, and the
		// change ("create", "update", ...) in resource hooks.
		Action   json.RawMessage `json:"action"`
		Resource struct {
			Addr string `json:"addr"`
		} `json:"resource"`
		Message   string `json:"message"`
		Lifecycle *struct {
			Resource struct {
				Addr string `json:"addr"`
			} `json:"resource"`
			TriggerEvent string `json:"trigger_event"`
		} `json:"lifecycle,omitempty"`
	} `json:"hook"`
}

// ActionAddr is the action's address of an action hook message.
func (m UIMessage) ActionAddr() string {
	var a struct {
		Addr string `json:"addr"`
	}
	if len(m.Hook.Action) == 0 || m.Hook.Action[0] != '{' || json.Unmarshal(m.Hook.Action, &a) != nil {
		return ""
	}
	return a.Addr
}

// UIMessages parses the output of a -json command.
func UIMessages(t *testing.T, out string) []UIMessage {
	t.Helper()
	var msgs []UIMessage
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m UIMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON UI message: %q: %v", line, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// Flat joins Terraform's word-wrapped output into single-spaced text.
func Flat(out string) string { return strings.Join(strings.Fields(out), " ") }
