package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cockroachdb/errors"

	"github.com/keel-db/keel/transport/pki"
)

// keel cluster certs: the cluster bus's certificates (docs/security.md), in
// the layout `keel cluster local` keeps in <dir>/tls: a CA, and per node a
// certificate naming it (keel://node/<id>) and its key. What exists is
// reused, so the command adds a node's certificate, signed by the same CA,
// to a running cluster's directory (before `keel cluster addnode`).

const certsUsage = `usage: keel cluster certs [--dir ./keel-cluster/tls] (--nodes N | --id N) [--hosts H,H]

Makes a cluster CA (ca.crt, ca.key) in --dir unless one is there, and a
certificate and key for each node (node-<id>.crt, node-<id>.key), signed by
that CA and naming the node's id; files that exist are checked and reused.
Prints each node's bus TLS flags for keel server. Every file is 0600: keep
ca.key away from the nodes if you can, it can make any node's identity.

flags:
  --dir ./keel-cluster/tls   the certificate directory (keel cluster local
                             --dir D keeps its certificates in D/tls)
  --nodes N                  nodes 1..N
  --id N                     node N only (to add a node to a cluster)
  --hosts 127.0.0.1,::1,localhost
                             IP addresses and DNS names the certificates
                             also list (the bus checks node ids, not host
                             names; other TLS tools may check these)
`

const (
	// certsNodesMax bounds --nodes: a key pair each, made in one go.
	certsNodesMax = 1000
	// certsHostsDefault: the loopback names, for clusters on one machine.
	certsHostsDefault = "127.0.0.1,::1,localhost"
)

func runClusterCerts(args []string) int { return clusterCerts(args, os.Stdout, os.Stderr) }

func clusterCerts(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keel cluster certs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "./keel-cluster/tls", "")
	nodes := fs.Int("nodes", 0, "")
	id := fs.Uint64("id", 0, "")
	hosts := fs.String("hosts", certsHostsDefault, "")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, certsUsage)
		return 0
	}
	var ids []uint64
	if err == nil {
		ids, err = certsIDs(fs, *nodes, *id)
	}
	if err == nil && *dir == "" {
		err = errors.New("--dir must not be empty")
	}
	if err != nil {
		fmt.Fprintf(stderr, "keel cluster certs: %v\n\n%s", err, certsUsage)
		return 2
	}
	created, err := pki.Ensure(*dir, ids, strings.Split(*hosts, ","), time.Now())
	for _, f := range created {
		fmt.Fprintf(stdout, "created %s\n", f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "keel cluster certs: %v\n", err)
		return 1
	}
	for _, id := range ids {
		fmt.Fprintf(stdout, "node %d: %s\n", id, strings.Join(busTLSFlags(*dir, id), " "))
	}
	return 0
}

// certsIDs reads --nodes or --id, exactly one of them.
func certsIDs(fs *flag.FlagSet, nodes int, id uint64) ([]uint64, error) {
	if fs.NArg() > 0 {
		return nil, errors.Newf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["nodes"] && set["id"]:
		return nil, errors.New("give --nodes or --id, not both")
	case set["nodes"]:
		if nodes < 1 || nodes > certsNodesMax {
			return nil, errors.Newf("--nodes %d: must be between 1 and %d", nodes, certsNodesMax)
		}
		ids := make([]uint64, nodes)
		for i := range ids {
			ids[i] = uint64(i + 1)
		}
		return ids, nil
	case set["id"]:
		if id == 0 {
			return nil, errors.New("--id 0: node ids are positive")
		}
		return []uint64{id}, nil
	default:
		return nil, errors.New("give --nodes N or --id N")
	}
}
