package engine

import "encoding/binary"

// zsetRoots reads a skiplist header's two trees: by member (member ->
// score) and by score ((score, member) keys).
func zsetRoots(v []byte) (byMember, byScore troot) {
	count := binary.LittleEndian.Uint64(v[9:])
	byMember = troot{root: nid(binary.LittleEndian.Uint32(v[1:])), count: count}
	byScore = troot{root: nid(binary.LittleEndian.Uint32(v[5:])), count: count}
	return byMember, byScore
}

// zsetHeader builds a skiplist header in db.hdr.
func (db *DB) zsetHeader(byMember, byScore troot) []byte {
	h := db.hdr[:skipHdrBytes]
	h[0] = encSkiplist
	binary.LittleEndian.PutUint32(h[1:], uint32(byMember.root))
	binary.LittleEndian.PutUint32(h[5:], uint32(byScore.root))
	binary.LittleEndian.PutUint64(h[9:], byMember.count)
	return h
}
