package main

import (
	"strings"
	"testing"

	"github.com/keel-db/keel/cluster"
)

// The cluster flags are checked together before anything is opened.
func TestServerClusterFlags(t *testing.T) {
	peers := "1@127.0.0.1:7001,2@127.0.0.1:7002,3@127.0.0.1:7003"
	for _, c := range []struct {
		args []string
		err  string // "" = accepted
	}{
		{[]string{"--port", "7002", "--node-id", "2", "--peers", peers, "--cluster-insecure", "yes"}, ""},
		{[]string{"--port", "6379"}, ""},
		{[]string{"--port", "7002", "--node-id", "2", "--peers", peers, "--cluster-insecure", "yes", "--join", "yes", "--groups", "3"}, ""},
		{[]string{"--port", "7004", "--node-id", "4", "--peers", peers, "--cluster-insecure", "yes"}, "node id 4 is not among the peers"},
		{[]string{"--port", "7001", "--node-id", "1", "--peers", peers, "--cluster-insecure", "yes", "--appendonly", "no"}, "needs appendonly yes"},
		{[]string{"--port", "7009", "--node-id", "1", "--peers", peers, "--cluster-insecure", "yes"}, "--port 7009 differs from node 1's address"},
		{[]string{"--port", "7001", "--peers", peers, "--cluster-insecure", "yes"}, "--peers needs --node-id"},
		{[]string{"--node-id", "1"}, "--node-id needs --peers"},
		{[]string{"--cluster-enabled", "yes"}, "cluster-enabled yes needs --peers"},
		{[]string{"--port", "7001", "--node-id", "1", "--peers", peers, "--cluster-insecure", "yes", "--cluster-enabled", "no"}, "contradicts cluster-enabled no"},
		{[]string{"--peers", "1@127.0.0.1"}, "want id@host:port"},
		{[]string{"--port", "7001", "--node-id", "1", "--peers", peers}, "--peers needs a secure cluster bus"},
		{[]string{"--port", "7001", "--node-id", "1", "--peers", peers, "--tls-cluster", "yes"}, "--tls-cluster yes needs --tls-cert-file"},
		{[]string{"--port", "7001", "--node-id", "1", "--peers", peers, "--tls-cluster", "yes", "--cluster-insecure", "yes"}, "choose one"},
		{[]string{"--node-id", "0"}, "must be a positive integer"},
	} {
		o, err := parseServerArgs(c.args)
		if err == nil {
			var peers []cluster.TopoNode
			if peers, err = o.clusterPeers(); err == nil && (peers != nil) != (o.peers != "") {
				t.Errorf("%v: peers %v", c.args, peers)
			}
		}
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v: got %v, want an error containing %q", c.args, err, c.err)
		}
	}
}
