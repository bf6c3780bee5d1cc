package provider

import (
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// providerData is handed to every resource and data source. It is a struct so
// fields can be added without changing every Configure.
type providerData struct {
	client *pve.Client
}

// configureData unpacks the provider's data for a resource or data source.
func configureData(in any, out **providerData) (diags diag.Diagnostics) {
	if in == nil {
		return nil // the provider is not configured yet (validation)
	}
	d, ok := in.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data", fmt.Sprintf("expected *providerData, got %T; this is a provider bug.", in))
		return diags
	}
	*out = d
	return nil
}
