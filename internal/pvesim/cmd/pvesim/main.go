// Command pvesim runs the Proxmox VE API simulator in the foreground.
//
//	go run ./internal/pvesim/cmd/pvesim --data-dir DIR [--listen 127.0.0.1:PORT] [--config FILE] [--throughput BYTES]
//
// When ready it writes DIR/env (shell export lines for the provider) and
// prints the same lines to stdout. It stops on SIGINT/SIGTERM.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/proxmoxapp/terraform-provider-proxmoxapp/internal/pvesim"
)

func main() {
	dataDir := flag.String("data-dir", "", "data directory (required; created if missing)")
	listen := flag.String("listen", "127.0.0.1:8006", "listen address")
	configPath := flag.String("config", "", "JSON inventory file (default: built-in two-node cluster)")
	throughput := flag.Int64("throughput", 0, "simulated archive/restore throughput in bytes/second (default 64 MiB/s)")
	overhead := flag.Duration("task-overhead", time.Second, "fixed extra time per vzdump/restore task")
	verbose := flag.Bool("v", false, "log every request to stderr")
	flag.Parse()
	if *dataDir == "" {
		fmt.Fprintln(os.Stderr, "pvesim: --data-dir is required")
		flag.Usage()
		os.Exit(2)
	}
	var cfg *pvesim.Config
	if *configPath != "" {
		c, err := pvesim.LoadConfig(*configPath)
		if err != nil {
			log.Fatal(err)
		}
		cfg = c
	}
	opts := pvesim.Options{DataDir: *dataDir, Listen: *listen, Config: cfg, Throughput: *throughput, TaskOverhead: *overhead}
	if *verbose {
		opts.Logf = log.Printf
	}
	sim, err := pvesim.Start(opts)
	if err != nil {
		log.Fatal(err)
	}
	env := strings.Join([]string{
		"export PROXMOX_VE_ENDPOINT=" + shq(sim.Endpoint()),
		"export PROXMOX_VE_API_TOKEN=" + shq(sim.APIToken()),
		"export PROXMOX_VE_CA_CERT=" + shq(sim.CAPath()),
	}, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(sim.DataDir(), "env"), []byte(env), 0o600); err != nil {
		log.Fatal(err)
	}
	fmt.Print(env)
	fmt.Fprintf(os.Stderr, "pvesim: ready at %s (read-only token %s); control API under %s_sim/; Ctrl-C to stop\n",
		sim.Endpoint(), sim.ReadOnlyToken(), sim.Endpoint())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	fmt.Fprintln(os.Stderr, "pvesim: shutting down")
	if err := sim.Close(); err != nil {
		log.Print(err)
	}
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
