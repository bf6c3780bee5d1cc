// Command rusagewrap stands in for the provider binary in `make bench`: it
// runs the real provider (PROXMOXAPP_BENCH_PROVIDER) with the same arguments,
// standard streams and environment, and when it exits appends its peak
// resident memory and CPU time to PROXMOXAPP_BENCH_RUSAGE, one line per run:
// "<maxrss KiB> <user ns> <system ns>".
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

func main() {
	provider := os.Getenv("PROXMOXAPP_BENCH_PROVIDER")
	if provider == "" {
		fmt.Fprintln(os.Stderr, "rusagewrap: PROXMOXAPP_BENCH_PROVIDER is not set")
		os.Exit(2)
	}
	cmd := exec.Command(provider, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// experiments: PROXMOXAPP_BENCH_GODEBUG / _GOMEMLIMIT reach the provider only
	cmd.Env = os.Environ()
	for _, v := range []string{"GODEBUG", "GOMEMLIMIT", "GOGC"} {
		if x := os.Getenv("PROXMOXAPP_BENCH_" + v); x != "" {
			cmd.Env = append(cmd.Env, v+"="+x)
		}
	}
	// Terraform signals the plugin process; pass signals on to the provider.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "rusagewrap:", err)
		os.Exit(2)
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	_ = cmd.Wait()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		if f, err := os.OpenFile(os.Getenv("PROXMOXAPP_BENCH_RUSAGE"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%d %d %d\n", ru.Maxrss, syscall.TimevalToNsec(ru.Utime), syscall.TimevalToNsec(ru.Stime))
			_ = f.Close()
		}
	}
	os.Exit(cmd.ProcessState.ExitCode())
}
