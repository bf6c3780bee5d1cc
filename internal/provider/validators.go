package provider

import (
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
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
