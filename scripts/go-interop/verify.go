// Command verify checks a saksi-written transparency log with Go's reference implementations,
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, reading the C2SP tlog-tiles layout.
//
// Usage: verify LOGDIR VKEY
//
// It verifies the published checkpoint and every checkpoint in LOGDIR/checkpoints with the vkey,
// recomputes the tree hash from the hash tiles (which tlog checks against the checkpoint root),
// re-hashes every entry in the entry bundles and checks it against the level-0 tiles, and checks
// inclusion proofs for sampled entries and consistency proofs from every old checkpoint.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type tiles struct{ dir string }

func (t tiles) Height() int { return 8 }

// C2SP paths are Go's tile paths without the height element: tile/8/L/N -> tile/L/N.
func (t tiles) path(tile tlog.Tile) string {
	return filepath.Join(t.dir, strings.Replace(tile.Path(), "tile/8/", "tile/", 1))
}

func (t tiles) ReadTiles(list []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(list))
	for i, tile := range list {
		data, err := os.ReadFile(t.path(tile))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-interop: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func openCheckpoint(path string, verifiers note.Verifiers) (tlog.Tree, string) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	n, err := note.Open(data, verifiers)
	if err != nil {
		fail("%s: note.Open: %v", path, err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("%s: short checkpoint", path)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("%s: size: %v", path, err)
	}
	hash, err := tlog.ParseHash(lines[2])
	if err != nil {
		fail("%s: root: %v", path, err)
	}
	return tlog.Tree{N: size, Hash: hash}, lines[0]
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: verify LOGDIR VKEY")
		os.Exit(2)
	}
	dir, vkey := os.Args[1], os.Args[2]
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("vkey: %v", err)
	}
	verifiers := note.VerifierList(verifier)
	tree, origin := openCheckpoint(filepath.Join(dir, "checkpoint"), verifiers)
	if origin != verifier.Name() {
		fail("origin %q is not the key name %q", origin, verifier.Name())
	}
	reader := tlog.TileHashReader(tree, tiles{dir})
	root, err := tlog.TreeHash(tree.N, reader)
	if err != nil {
		fail("TreeHash: %v", err)
	}
	if root != tree.Hash {
		fail("tree hash %v != checkpoint %v", root, tree.Hash)
	}

	// Every entry, re-hashed, must be the level-0 hash the tiles hold.
	var index int64
	for n := int64(0); index < tree.N; n++ {
		width := tree.N - n*256
		if width > 256 {
			width = 256
		}
		name := tlog.Tile{H: 8, L: 0, N: n, W: int(width)}
		path := strings.Replace(tiles{dir}.path(name), "/tile/0/", "/tile/entries/", 1)
		data, err := os.ReadFile(path)
		if err != nil {
			fail("%v", err)
		}
		var hashes []tlog.Hash
		for len(data) > 0 {
			if len(data) < 2 {
				fail("%s: truncated length", path)
			}
			size := int(binary.BigEndian.Uint16(data))
			if len(data) < 2+size {
				fail("%s: truncated entry", path)
			}
			hashes = append(hashes, tlog.RecordHash(data[2:2+size]))
			data = data[2+size:]
		}
		if int64(len(hashes)) != width {
			fail("%s: %d entries, want %d", path, len(hashes), width)
		}
		indexes := make([]int64, width)
		for i := range indexes {
			indexes[i] = tlog.StoredHashIndex(0, index+int64(i))
		}
		stored, err := reader.ReadHashes(indexes)
		if err != nil {
			fail("ReadHashes: %v", err)
		}
		for i := range hashes {
			if hashes[i] != stored[i] {
				fail("entry %d: hash mismatch", index+int64(i))
			}
		}
		index += width
	}

	// Inclusion proofs for a sample of entries.
	proofs := 0
	for _, i := range []int64{0, tree.N / 3, tree.N / 2, tree.N - 1} {
		if i < 0 || i >= tree.N {
			continue
		}
		proof, err := tlog.ProveRecord(tree.N, i, reader)
		if err != nil {
			fail("ProveRecord %d: %v", i, err)
		}
		leaf, err := reader.ReadHashes([]int64{tlog.StoredHashIndex(0, i)})
		if err != nil {
			fail("%v", err)
		}
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, i, leaf[0]); err != nil {
			fail("CheckRecord %d: %v", i, err)
		}
		proofs++
	}

	// Every checkpoint ever signed: valid, and consistent with the latest.
	names, err := os.ReadDir(filepath.Join(dir, "checkpoints"))
	if err != nil {
		fail("%v", err)
	}
	sort.Slice(names, func(a, b int) bool { return names[a].Name() < names[b].Name() })
	for _, name := range names {
		old, _ := openCheckpoint(filepath.Join(dir, "checkpoints", name.Name()), verifiers)
		if strconv.FormatInt(old.N, 10) != name.Name() {
			fail("checkpoints/%s has size %d", name.Name(), old.N)
		}
		if old.N == 0 || old.N > tree.N {
			continue
		}
		proof, err := tlog.ProveTree(tree.N, old.N, reader)
		if err != nil {
			fail("ProveTree %d: %v", old.N, err)
		}
		if err := tlog.CheckTree(proof, tree.N, tree.Hash, old.N, old.Hash); err != nil {
			fail("CheckTree %d -> %d: %v", old.N, tree.N, err)
		}
		proofs++
	}
	fmt.Printf("go-interop: OK: %s size %d, %d checkpoints, %d entries re-hashed, %d proofs checked with golang.org/x/mod/sumdb\n",
		origin, tree.N, len(names), index, proofs)
}
