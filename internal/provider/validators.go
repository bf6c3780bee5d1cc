package provider

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// Identifier grammars from PVE (pve-storage-id, pve-node, pve-vmid).
var (
	storageIDPattern = regexp.MustCompile(`^(?i)[a-z][a-z0-9\-_.]*[a-z0-9]$`)
	nodeNamePattern  = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$`)
	// notesVariablePattern finds {{...}} variables of a notes template.
	notesVariablePattern = regexp.MustCompile(`\{\{([^}]*)\}\}`)
)

const (
	minVMID = 100
	maxVMID = 999999999
)

func vmidValidators() []validator.Int64 {
	return []validator.Int64{int64validator.Between(minVMID, maxVMID)}
}

func storageValidators() []validator.String {
	return []validator.String{stringvalidator.RegexMatches(storageIDPattern,
		"must be a Proxmox VE storage ID: a letter, then letters, digits, '-', '_' or '.', ending in a letter or digit")}
}

func nodeValidators() []validator.String {
	return []validator.String{stringvalidator.RegexMatches(nodeNamePattern,
		"must be a Proxmox VE node name: letters, digits and '-', not starting or ending with '-'")}
}

// backupVolIDValidator checks the shape of a backup volume ID at plan time.
type backupVolIDValidator struct{}

var _ validator.String = backupVolIDValidator{}

func (backupVolIDValidator) Description(context.Context) string {
	return "a backup volume ID: STORAGE:backup/vzdump-<lxc|qemu>-<vmid>-<YYYY_MM_DD-HH_MM_SS>.<ext> or STORAGE:backup/<ct|vm>/<vmid>/<time>"
}

func (v backupVolIDValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (backupVolIDValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := pve.ParseBackupVolID(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid backup volume ID", err.Error())
	}
}

// durationValidator checks a Go duration string ("90s", "3m", "1h30m").
type durationValidator struct {
	min time.Duration
}

var _ validator.String = durationValidator{}

func (v durationValidator) Description(context.Context) string {
	return fmt.Sprintf("a duration such as 90s, 3m or 1h, at least %s", v.min)
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	switch {
	case err != nil:
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("expected a duration such as 90s, 3m or 1h, got %q.", req.ConfigValue.ValueString()))
	case d < v.min:
		resp.Diagnostics.AddAttributeError(req.Path, "Duration too short",
			fmt.Sprintf("must be at least %s, got %s.", v.min, d))
	}
}
