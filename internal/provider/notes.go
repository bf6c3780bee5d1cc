package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

// notesTemplateVariables are the variables vzdump's notes-template knows.
var notesTemplateVariables = map[string]bool{"cluster": true, "guestname": true, "node": true, "vmid": true}

// notesValidator enforces what PVE enforces on notes-template, at plan time:
// one line (line breaks written as \n), only known {{variables}}.
type notesValidator struct{}

var _ validator.String = notesValidator{}

func (notesValidator) Description(context.Context) string {
	return "one line of at most 1024 bytes; variables {{cluster}}, {{guestname}}, {{node}}, {{vmid}}"
}

func (v notesValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (notesValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	if len(s) > 1024 {
		resp.Diagnostics.AddAttributeError(req.Path, "Notes too long",
			fmt.Sprintf("notes may hold at most 1024 bytes (PVE's limit; in UTF-8 a character other than ASCII takes 2 to 4 bytes), got %d bytes.", len(s)))
	}
	if strings.ContainsAny(s, "\r\n") {
		resp.Diagnostics.AddAttributeError(req.Path, "Notes must be one line",
			`notes is sent to PVE as a notes template, which must be one line: write a line break as the two characters \n (in HCL: "\\n").`)
	}
	for _, m := range notesVariablePattern.FindAllStringSubmatch(s, -1) {
		if !notesTemplateVariables[m[1]] {
			resp.Diagnostics.AddAttributeError(req.Path, "Unknown notes variable",
				fmt.Sprintf("notes uses {{%s}}, but PVE knows only {{cluster}}, {{guestname}}, {{node}} and {{vmid}}.", m[1]))
		}
	}
}

// expandNotes renders a notes template the way vzdump does, for the in-place
// update path (PUT on the volume stores notes verbatim, with no expansion).
func expandNotes(tmpl string, vars map[string]string) string {
	out := notesVariablePattern.ReplaceAllStringFunc(tmpl, func(m string) string {
		if v, ok := vars[m[2:len(m)-2]]; ok {
			return v
		}
		return m
	})
	// vzdump understands two escapes: \n and \\.
	var b strings.Builder
	for i := 0; i < len(out); i++ {
		if out[i] == '\\' && i+1 < len(out) {
			switch out[i+1] {
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case '\\':
				b.WriteByte('\\')
				i++
				continue
			}
		}
		b.WriteByte(out[i])
	}
	return b.String()
}

// Private state values must be JSON.
func encodePrivateString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func decodePrivateString(b []byte) string {
	var s string
	if len(b) > 0 {
		_ = json.Unmarshal(b, &s)
	}
	return s
}
