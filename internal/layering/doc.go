// Package layering holds keel's packages to the imports their doc.go
// says they may make ("May import: ..."), and the sans-I/O core to its
// rule: no package the node runs (node, cluster, engine, disk, udf,
// seam, resp) depends, even indirectly, on network code. It has tests
// only.
//
// May import: nothing of keel.
package layering
