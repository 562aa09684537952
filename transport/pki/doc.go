// Package pki makes and checks the certificates of keel's cluster bus: a
// cluster CA, and one certificate per node that names the node's id, so
// that a peer's id is what its verified certificate says and not what it
// claims. The transport reads ids with NodeID; `keel cluster local` and
// `keel cluster certs` make the files with Ensure.
//
// The id format: exactly one URI SAN keel://node/<id>, <id> the node id in
// decimal without leading zeros (keel://node/3). The subject's CN
// (keel-node-3) is for people reading the certificate and is never
// trusted.
//
// May import: nothing of keel.
package pki
