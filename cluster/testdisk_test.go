package cluster

import (
	"math/rand/v2"
	"testing"

	"github.com/keel-db/keel/disk"
)

// testDisk is the disk cluster tests run on: a crashable in-memory disk
// (512-byte sectors) with the two faults tests switch on by hand. Its
// clones are what a power loss at that moment would leave.
type testDisk struct {
	*disk.ErrorFS
	mem *disk.MemFS
	// spaceLeft is the bytes writes may still add (<0: unlimited); the
	// write that passes it is torn there and fails with ENOSPC, as
	// write(2) on a filling disk does.
	spaceLeft int64
	// failSync fails every fsync with EIO (the dirty pages are dropped:
	// fsyncgate).
	failSync bool
}

func newTestDisk() *testDisk { return onMem(disk.NewCrashableMemFS(512)) }

func onMem(mem *disk.MemFS) *testDisk {
	d := &testDisk{mem: mem, spaceLeft: -1}
	d.ErrorFS = disk.NewErrorFS(mem, disk.InjectorFunc(d.inject))
	return d
}

func (d *testDisk) inject(op disk.Op) disk.Fault {
	switch {
	case op.Kind == disk.OpSync && d.failSync:
		return disk.Fault{Kind: disk.FaultError, Err: disk.ErrIO}
	case op.Kind == disk.OpWrite && d.spaceLeft >= 0:
		if op.Len > d.spaceLeft {
			keep := d.spaceLeft
			d.spaceLeft = 0
			return disk.Fault{Kind: disk.FaultError, Err: disk.ErrNoSpace, Keep: keep}
		}
		d.spaceLeft -= op.Len
	}
	return disk.Fault{}
}

// crashClone is the disk after a power loss now: synced data only, no
// locks, no faults.
func (d *testDisk) crashClone() *testDisk { return onMem(d.mem.CrashClone(disk.CrashCloneCfg{})) }

// tornClone is crashClone with a nastier power loss: every file with
// unsynced data keeps a random subset of its dirty sectors (the others
// read back as before or as zeros) and ends at any sector boundary in the
// written range.
func (d *testDisk) tornClone(rng *rand.Rand) *testDisk {
	return onMem(d.mem.CrashClone(disk.CrashCloneCfg{TornProb: 1, Rand: rng}))
}

func readFile(t testing.TB, fs disk.FS, name string) []byte {
	t.Helper()
	b, err := disk.ReadFile(fs, name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeFile replaces name's contents, synced (as a disk edited behind the
// replica's back).
func writeFile(t testing.TB, fs disk.FS, name string, b []byte) {
	t.Helper()
	if err := disk.WriteFile(fs, name, b); err != nil {
		t.Fatal(err)
	}
}
