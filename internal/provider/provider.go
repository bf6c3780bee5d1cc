// Package provider is the terraform-plugin-framework glue of proxmoxapp:
// schemas, models and the calls into internal/pve. It never builds URLs.
package provider

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
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

var _ provider.Provider = (*proxmoxappProvider)(nil)

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

	client, err := pve.NewClient(ctx, pcfg)
	if err != nil {
		resp.Diagnostics.AddError("Unable to create Proxmox VE client", err.Error())
		return
	}
	data := &providerData{client: client}
	p.configured.Store(data)
	resp.ResourceData = data
	resp.DataSourceData = data
}

func (p *proxmoxappProvider) Resources(_ context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewBackupResource,
		NewRestoreResource,
	}
}

func (p *proxmoxappProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewBackupsDataSource}
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

	if out.Endpoint == "" {
		diags.attr("endpoint", "Missing Proxmox VE endpoint",
			"Set endpoint in the provider block or the "+envEndpoint+" environment variable, e.g. https://pve.example.com:8006/.")
	} else {
		u, err := url.Parse(out.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			diags.attr("endpoint", "Malformed Proxmox VE endpoint",
				fmt.Sprintf("endpoint (or %s) must be an absolute http(s) URL such as https://pve.example.com:8006/, got %q.", envEndpoint, out.Endpoint))
		}
	}

	hasToken := out.APIToken != ""
	hasLogin := out.Username != "" || out.Password != ""
	switch {
	case hasToken && hasLogin:
		diags.attr("api_token", "Conflicting Proxmox VE credentials",
			"Set either api_token ("+envAPIToken+") or username and password ("+envUsername+", "+envPassword+"), not both.")
	case !hasToken && !hasLogin:
		diags.attr("api_token", "Missing Proxmox VE credentials",
			"Set api_token ("+envAPIToken+") as USER@REALM!TOKENID=SECRET, or username and password ("+envUsername+", "+envPassword+").")
	case hasToken && !validAPIToken(out.APIToken):
		// Never echo the token: it holds the secret.
		diags.attr("api_token", "Malformed Proxmox VE API token",
			"api_token (or "+envAPIToken+") must look like USER@REALM!TOKENID=SECRET, e.g. terraform@pve!backup=xxxxxxxx-xxxx-....")
	case hasLogin && (out.Username == "" || out.Password == ""):
		diags.attr("username", "Incomplete Proxmox VE login",
			"username ("+envUsername+") and password ("+envPassword+") must be set together.")
	case hasLogin && !strings.Contains(out.Username, "@"):
		diags.attr("username", "Malformed Proxmox VE username",
			fmt.Sprintf("username (or %s) must include the realm, e.g. root@pam, got %q.", envUsername, out.Username))
	}
	return out, diags
}

// validAPIToken checks the USER@REALM!TOKENID=SECRET shape.
func validAPIToken(tok string) bool {
	eq := strings.LastIndex(tok, "=")
	if eq <= 0 || eq == len(tok)-1 {
		return false
	}
	id := tok[:eq]
	at := strings.Index(id, "@")
	bang := strings.Index(id, "!")
	return at > 0 && bang > at+1 && bang < len(id)-1
}
