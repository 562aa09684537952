// Package inproc profiles keel's server in-process under real load: its
// benchmark starts server.New on a loopback listener inside the test binary
// and drives it with redis-benchmark, a separate process, so that
// `go test -bench . -cpuprofile` records the server's CPU and none of the
// client's. It exists because the profile is wanted without a pprof flag on
// `keel server`; bench (the black-box harness) runs it for --profile.
//
// May import: server, cluster, disk, seam.
package inproc
