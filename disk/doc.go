// Package disk owns everything keel puts on a disk: the FS seam that all
// file I/O goes through, its operating-system implementation (osfs.go, the
// only file here allowed to call package os), the write-ahead log's segment
// format, the snapshot file format, and recovery (finding the newest valid
// snapshot, replaying the log after it, truncating a torn tail, refusing to
// start on corruption in the middle).
//
// The disk is assumed to lie: writes tear at sector boundaries, fsync can
// fail (and after a failed fsync the unsynced data is gone), reads can
// return flipped bits, and the disk can fill. Every record is checksummed.
//
// The lying disk is here too, for every test and the simulator: MemFS
// (memfs.go) is an in-memory FS that models the page cache, so that
// CrashClone returns what a power loss would leave (synced bytes, and with
// a seeded chance torn sectors of the unsynced ones); ErrorFS (errorfs.go)
// wraps any FS and lets an Injector fail, tear, flip or crash each
// operation (RandomFaults, CrashAt and SpaceLimit are the seeded ones).
// Neither reads a clock, starts a goroutine or draws randomness it was not
// handed.
//
// May import: engine types only.
package disk
