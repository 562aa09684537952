package cluster

// TestingKnobs plant deliberate bugs, so that tests can prove the
// simulator and the checker catch them (a sweep that cannot fail proves
// nothing). Production code never sets them; a nil *TestingKnobs is the
// correct program.
type TestingKnobs struct {
	// AckBeforeFsync: under appendfsync always, reply to writes without
	// fsyncing the WAL first, the bug "appendfsync always" exists to rule
	// out. The bytes reach the disk only at a later fsync (a HardState
	// change, a snapshot), so a power loss drops acknowledged writes.
	AckBeforeFsync bool
}

func (k *TestingKnobs) ackBeforeFsync() bool { return k != nil && k.AckBeforeFsync }
