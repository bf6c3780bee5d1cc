package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
)

// providerDiags collects configuration errors, each pinned to an attribute.
type providerDiags struct {
	diag.Diagnostics
}

func (d *providerDiags) attr(attribute, summary, detail string) {
	d.AddAttributeError(path.Root(attribute), summary, detail)
}
