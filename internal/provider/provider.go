// Package provider is the terraform-plugin-framework glue of proxmoxapp:
// schemas, models and the calls into internal/pve. It never builds URLs.
package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/list"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pve"
)

// Environment variables, named as bpg/proxmox names them so one set of
// credentials serves both providers.
const (
	envEndpoint = "PROXMOX_VE_ENDPOINT"
	envAPIToken = "PROXMOX_VE_API_TOKEN"
	envUsername = "PROXMOX_VE_USERNAME"
	envPassword = "PROXMOX_VE_PASSWORD"
	envOTP      = "PROXMOX_VE_OTP"
	envInsecure = "PROXMOX_VE_INSECURE"
	envCACert   = "PROXMOX_VE_CA_CERT"
)

// envForField names the environment variable of each attribute pve.Config.Validate can fault.
var envForField = map[string]string{
	pve.FieldEndpoint: envEndpoint,
	pve.FieldAPIToken: envAPIToken,
	pve.FieldUsername: envUsername,
	pve.FieldPassword: envPassword,
	pve.FieldCACert:   envCACert,
}

var (
	_ provider.Provider                  = (*proxmoxappProvider)(nil)
	_ provider.ProviderWithActions       = (*proxmoxappProvider)(nil)
	_ provider.ProviderWithListResources = (*proxmoxappProvider)(nil)
)

type proxmoxappProvider struct {
	version string
	// configured is what Configure made, for the protocol-level fast path
	// of the data source (server.go)
	configured atomic.Pointer[providerData]
}

// New returns the provider factory for the given release version.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &proxmoxappProvider{version: version}
	}
}

type providerModel struct {
	Endpoint types.String `tfsdk:"endpoint"`
	APIToken types.String `tfsdk:"api_token"`
	Username types.String `tfsdk:"username"`
	Password types.String `tfsdk:"password"`
	OTP      types.String `tfsdk:"otp"`
	Insecure types.Bool   `tfsdk:"insecure"`
	CACert   types.String `tfsdk:"ca_cert"`
}

func (p *proxmoxappProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "proxmoxapp"
	resp.Version = p.version
}

func (p *proxmoxappProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Back up and restore Proxmox VE guests (LXC containers and QEMU VMs) declaratively.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				MarkdownDescription: "Base URL of the Proxmox VE API, e.g. `https://pve.example.com:8006/`. " +
					"A trailing `/api2/json` is accepted. Environment variable: `" + envEndpoint + "`.",
				Optional: true,
			},
			"api_token": schema.StringAttribute{
				MarkdownDescription: "API token as `USER@REALM!TOKENID=SECRET`. Conflicts with `username`/`password`. " +
					"Environment variable: `" + envAPIToken + "`.",
				Optional:  true,
				Sensitive: true,
			},
			"username": schema.StringAttribute{
				MarkdownDescription: "User for ticket login, as `USER@REALM` (e.g. `root@pam`). Needs `password`. " +
					"Environment variable: `" + envUsername + "`.",
				Optional: true,
			},
			"password": schema.StringAttribute{
				MarkdownDescription: "Password for ticket login. Environment variable: `" + envPassword + "`.",
				Optional:            true,
				Sensitive:           true,
			},
			"otp": schema.StringAttribute{
				MarkdownDescription: "One-time password for ticket login with two-factor authentication. " +
					"Environment variable: `" + envOTP + "`.",
				Optional:  true,
				Sensitive: true,
			},
			"insecure": schema.BoolAttribute{
				MarkdownDescription: "Skip TLS certificate verification. Defaults to `false`; prefer `ca_cert`. " +
					"Environment variable: `" + envInsecure + "`.",
				Optional: true,
			},
			"ca_cert": schema.StringAttribute{
				MarkdownDescription: "PEM-encoded CA certificate to trust for the API's TLS certificate (pins a " +
					"self-signed cluster CA). Environment variable: `" + envCACert + "`, which may hold the PEM text " +
					"or the path of a PEM file.",
				Optional: true,
			},
		},
	}
}

func (p *proxmoxappProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}

	// Unknown values (e.g. from a resource not yet created) cannot configure
	// a client; say which attribute it was.
	for name, v := range map[string]interface{ IsUnknown() bool }{
		"endpoint": cfg.Endpoint, "api_token": cfg.APIToken, "username": cfg.Username,
		"password": cfg.Password, "otp": cfg.OTP, "insecure": cfg.Insecure, "ca_cert": cfg.CACert,
	} {
		if v.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root(name), "Unknown provider configuration value",
				fmt.Sprintf("The provider cannot connect to Proxmox VE while %q is unknown at plan time. "+
					"Set it to a known value, or use its environment variable.", name))
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}

	pcfg, diags := resolveProviderConfig(cfg, os.Getenv)
	resp.Diagnostics.Append(diags.Diagnostics...)
	if resp.Diagnostics.HasError() {
		return
	}
	pcfg.UserAgent = "terraform-provider-proxmoxapp/" + p.version

	ctx = tflog.SetField(ctx, "proxmox_endpoint", pcfg.Endpoint)
	ctx = tflog.MaskFieldValuesWithFieldKeys(ctx, "api_token", "password", "otp")
	tflog.Debug(ctx, "configuring Proxmox VE client")

	// One request proves reachability, TLS trust and credentials, so that a
	// wrong token fails `terraform plan` instead of the apply: a password
	// login does it inside NewClient (POST /access/ticket), a token with
	// GET /cluster/resources, whose answer the plan checks then use.
	client, err := pve.NewClient(ctx, pcfg)
	if err == nil && pcfg.APIToken != "" {
		if err = client.CheckAccess(ctx); err == nil {
			tflog.Debug(ctx, "Proxmox VE reachable")
		}
	}
	if err != nil {
		addAccessDiagnostic(&resp.Diagnostics, err)
		return
	}
	data := &providerData{client: client}
	p.configured.Store(data)
	resp.ResourceData = data
	resp.DataSourceData = data
	resp.ActionData = data
	resp.ListResourceData = data
}

func (p *proxmoxappProvider) Resources(_ context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewBackupResource,
		NewRestoreResource,
		NewBackupJobResource,
		NewRestoreDrillResource,
		NewBackupPruneResource,
	}
}

func (p *proxmoxappProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewBackupsDataSource, NewBackupJobCoverageDataSource, NewBackupJobResultsDataSource,
		NewBackupRetentionDataSource}
}

// Actions need Terraform 1.14 or later; older versions never ask for them.
func (p *proxmoxappProvider) Actions(_ context.Context) []func() action.Action {
	return []func() action.Action{
		NewBackupAction,
		NewRestoreAction,
	}
}

// ListResources (for `terraform query`) need Terraform 1.14 or later.
func (p *proxmoxappProvider) ListResources(_ context.Context) []func() list.ListResource {
	return []func() list.ListResource{NewBackupListResource}
}

// resolveProviderConfig merges the configuration with the environment and
// checks it, so that every problem names the attribute and its variable.
func resolveProviderConfig(cfg providerModel, getenv func(string) string) (pve.Config, providerDiags) {
	var diags providerDiags
	pick := func(v types.String, env string) string {
		if !v.IsNull() {
			return v.ValueString()
		}
		return getenv(env)
	}
	out := pve.Config{
		Endpoint: strings.TrimSpace(pick(cfg.Endpoint, envEndpoint)),
		APIToken: pick(cfg.APIToken, envAPIToken),
		Username: pick(cfg.Username, envUsername),
		Password: pick(cfg.Password, envPassword),
		OTP:      pick(cfg.OTP, envOTP),
	}

	if !cfg.Insecure.IsNull() {
		out.Insecure = cfg.Insecure.ValueBool()
	} else if v := getenv(envInsecure); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			diags.attr("insecure", "Invalid "+envInsecure,
				fmt.Sprintf("%s must be true or false, got %q.", envInsecure, v))
		}
		out.Insecure = b
	}

	caCert := pick(cfg.CACert, envCACert)
	if caCert != "" {
		if !strings.Contains(caCert, "-----BEGIN") {
			// The environment variable may name a file, as the simulator's env file does.
			pem, err := os.ReadFile(caCert)
			if err != nil {
				diags.attr("ca_cert", "Unreadable CA certificate",
					fmt.Sprintf("ca_cert (or %s) is neither PEM text nor a readable file: %v", envCACert, err))
			}
			caCert = string(pem)
		}
		out.CACertPEM = []byte(caCert)
	}

	// The rules themselves live in internal/pve (Config.Validate), the one
	// place NewClient checks too; here each problem is pinned to its attribute.
	for _, e := range out.Validate() {
		diags.attr(e.Field, e.Summary, fmt.Sprintf("%s (argument %s, environment variable %s)", e.Detail, e.Field, envForField[e.Field]))
	}
	return out, diags
}

// addAccessDiagnostic reports a client that could not be built or could not
// reach the API: titled by the kind of problem (authentication, TLS,
// connection), pinned to the attribute to fix, naming endpoint and identity.
func addAccessDiagnostic(diags *diag.Diagnostics, err error) {
	var ae *pve.AccessError
	if !errors.As(err, &ae) {
		var ce *pve.ConfigError
		if errors.As(err, &ce) {
			diags.AddAttributeError(path.Root(ce.Field), ce.Summary, ce.Detail)
			return
		}
		diags.AddError("Unable to create Proxmox VE client", err.Error())
		return
	}
	attr := pve.FieldEndpoint
	switch {
	case ae.Kind == pve.AccessAuthentication && ae.Token:
		attr = pve.FieldAPIToken
	case ae.Kind == pve.AccessAuthentication:
		attr = pve.FieldPassword
	case ae.Kind == pve.AccessTLS && !strings.HasPrefix(ae.Endpoint, "http://"):
		attr = pve.FieldCACert
	}
	diags.AddAttributeError(path.Root(attr), ae.Summary(), ae.Error())
}
