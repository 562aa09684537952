package server

import (
	"testing"

	"github.com/keel-db/keel/cluster"
	"github.com/keel-db/keel/transport"
)

// The replicas size their messages to the transport's frame bound, which
// cluster states without importing the transport.
func TestReplicaMessagesFitTheTransport(t *testing.T) {
	if cluster.TransportMessageBytesMax != transport.MessageBytesMax {
		t.Fatalf("cluster assumes a %d-byte transport frame, the transport's is %d", cluster.TransportMessageBytesMax, transport.MessageBytesMax)
	}
	if cluster.MessageBytesMaxDefault >= transport.MessageBytesMax {
		t.Fatal("no room left for the node's group frame")
	}
}
