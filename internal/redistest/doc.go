// Package redistest starts a real Redis beside keel in a test, so that
// compatibility tests compare keel's replies and error texts with
// Redis 7's in the same run, not with remembered ones.
//
// Without a redis-server on the PATH a test is skipped with a message,
// unless KEEL_REQUIRE_REDIS=1 (.ci/run sets it after installing Redis), in
// which case it fails: in CI a comparison never silently turns into a
// skip.
//
// May import: nothing of keel.
package redistest
