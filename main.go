// Command terraform-provider-proxmoxapp serves the proxmoxapp Terraform provider.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/provider"
)

// version is set by goreleaser through -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()
	quietSDKLogsUnlessAsked()

	var opts []tf6server.ServeOpt
	if debug {
		opts = append(opts, tf6server.WithManagedDebug())
	}
	// the framework's server, with the data source's fast Read (see NewServer)
	err := tf6server.Serve("registry.terraform.io/proxmoxapp/proxmoxapp", provider.NewServer(version), opts...)
	if err != nil {
		log.Fatal(err)
	}
}

// quietSDKLogsUnlessAsked turns the plugin SDK's own logs off when no log
// output was asked for. terraform-plugin-go and the framework log at TRACE
// unless TF_LOG_SDK, TF_LOG_SDK_PROTO and TF_LOG_SDK_FRAMEWORK say otherwise,
// and JSON-encode every line even when Terraform, without TF_LOG, throws
// them away: that was over a third of the provider's CPU in a large plan.
// With TF_LOG, TF_LOG_PROVIDER or TF_LOG_PATH set, or those variables set
// explicitly, nothing changes.
func quietSDKLogsUnlessAsked() {
	for _, v := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_PATH"} {
		if os.Getenv(v) != "" {
			return
		}
	}
	for _, v := range []string{"TF_LOG_SDK", "TF_LOG_SDK_PROTO", "TF_LOG_SDK_FRAMEWORK"} {
		if _, set := os.LookupEnv(v); !set {
			_ = os.Setenv(v, "OFF")
		}
	}
}
