// Package bench holds `make bench`: the performance scenarios of issue 12,
// run with a real Terraform against the PVE simulator and, side by side in
// the same run, a reference client that does what a hand-written script
// does. The scenarios are behind the "bench" build tag, so `make test` never
// runs them; see BENCHMARKS.md for the results and how to rerun one line.
package bench
