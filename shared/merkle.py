"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0), section 2.1, with SHA-256.

Pure functions over leaf hashes: the tree hash, inclusion proofs and consistency proofs, and
their verification. A leaf's hash is ``SHA-256(0x00 || leaf)``, an interior node's
``SHA-256(0x01 || left || right)``: the prefixes keep a leaf from passing for a node (second
preimages). Checked against the RFC 6962/9162 test vectors of transparency-dev/merkle
(tests/unit/data/rfc9162_vectors.json).

No library on PyPI implements exactly this and is kept up: the few that do Merkle trees either
hash differently (no prefixes, sorted pairs) or are unmaintained. The algorithms are short and
the RFC spells them out, so they are written here from the RFC's text.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n`` > 1): where MTH splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH: the hash of the tree whose leaf hashes are ``leaves`` (empty: SHA-256 of nothing)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    # Bottom-up, level by level: the same tree as the RFC's recursion, without the recursion
    # depth (an odd node at the end of a level moves up unchanged).
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf ``index`` in the tree of ``leaves``."""
    if not 0 <= index < len(leaves):
        raise ValueError("leaf index outside the tree")
    return _path(index, leaves)


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves[:k]), root_hash(leaves[k:])]
    return [*_path(m - k, leaves[k:]), root_hash(leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]): what shows the tree of the first ``old_size`` leaves is a prefix of this."""
    if not 0 < old_size <= len(leaves):
        raise ValueError("old size must be between 1 and the tree's size")
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root_hash(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), root_hash(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root_hash(leaves[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2: whether ``leaf`` (a leaf hash) is leaf ``index`` of the tree ``root``."""
    if not 0 <= index < size or any(len(h) != HASH_SIZE for h in (leaf, root, *proof)):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2: whether the tree ``new_root`` extends the tree ``old_root``."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:  # the same tree: nothing to prove but that the roots agree
        return not proof and hmac.compare_digest(old_root, new_root)
    if not proof or any(len(h) != HASH_SIZE for h in (old_root, new_root, *proof)):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old tree is a node of the proof
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)


class MerkleTree:
    """A growing tree that keeps every complete subtree's hash, so that the root, an inclusion
    proof or a consistency proof at any size costs O(log² n) hashes instead of O(n).

    ``levels[k][i]`` is the hash of leaves ``i * 2**k`` to ``(i + 1) * 2**k - 1``; appending a
    leaf completes at most one node per level. The results equal the functions above (the RFC's
    definitions), which the tests hold it to.
    """

    def __init__(self, leaves: Sequence[bytes] = ()):
        self.levels: list[list[bytes]] = [[]]
        for leaf in leaves:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        self.levels[0].append(leaf)
        level, index = 0, len(self.levels[0]) - 1
        while index % 2 == 1:  # a right child: its parent is complete now
            parent = node_hash(self.levels[level][index - 1], self.levels[level][index])
            if level + 1 == len(self.levels):
                self.levels.append([])
            self.levels[level + 1].append(parent)
            level, index = level + 1, index // 2

    def leaf(self, index: int) -> bytes:
        return self.levels[0][index]

    def _range(self, start: int, end: int) -> bytes:
        """MTH of leaves ``start`` to ``end - 1`` (``start`` aligned as the RFC's splits are)."""
        n = end - start
        if n & (n - 1) == 0:  # a complete subtree: kept
            return self.levels[n.bit_length() - 1][start >> (n.bit_length() - 1)]
        k = _split(n)
        return node_hash(self._range(start, start + k), self._range(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError("size outside the tree")
        return self._range(0, size) if size else hashlib.sha256(b"").digest()

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError("leaf index outside the tree")
        proof: list[bytes] = []
        start, end, m = 0, size, index
        while end - start > 1:  # PATH(m, D[start:end]), from the top down
            k = _split(end - start)
            if m < k:
                proof.append(self._range(start + k, end))
                end = start + k
            else:
                proof.append(self._range(start, start + k))
                start, m = start + k, m - k
        return proof[::-1]

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if not 0 < old_size <= size <= self.size:
            raise ValueError("old size must be between 1 and the tree's size")
        proof: list[bytes] = []
        start, end, m, whole = 0, size, old_size, True
        while m != end - start:  # SUBPROOF(m, D[start:end], whole), from the top down
            k = _split(end - start)
            if m <= k:
                proof.append(self._range(start + k, end))
                end = start + k
            else:
                proof.append(self._range(start, start + k))
                start, m, whole = start + k, m - k, False
        if not whole:
            proof.append(self._range(start, end))
        return proof[::-1]
