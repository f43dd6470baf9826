"""The Merkle tree of RFC 9162 against the RFC 6962/9162 test vectors of transparency-dev/merkle."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from shared import merkle

VECTORS = json.loads((Path(__file__).parent / "data" / "rfc9162_vectors.json").read_text())

#: The reference tree: its eight leaf inputs and the root of each prefix (size 0 to 8).
LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
LEAVES = [merkle.leaf_hash(data) for data in LEAF_INPUTS]


def _b(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b(p) for p in case["proof"] or []]


@pytest.mark.parametrize("size", range(9))
def test_the_root_of_each_prefix_of_the_reference_tree_is_the_rfcs(size: int) -> None:
    assert merkle.root_hash(LEAVES[:size]) == ROOTS[size]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: c["file"])
def test_inclusion_proofs_verify_exactly_when_the_vectors_say(case: dict[str, Any]) -> None:
    ok = merkle.verify_inclusion(
        _b(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case), _b(case["root"])
    )
    assert ok is not case["wantErr"]


@pytest.mark.parametrize("case", VECTORS["consistency"], ids=lambda c: c["file"])
def test_consistency_proofs_verify_exactly_when_the_vectors_say(case: dict[str, Any]) -> None:
    ok = merkle.verify_consistency(
        case["size1"], case["size2"], _b(case["root1"]), _b(case["root2"]), _proof(case)
    )
    assert ok is not case["wantErr"]


@pytest.mark.parametrize(
    "case", [c for c in VECTORS["inclusion"] if not c["wantErr"]], ids=lambda c: c["file"]
)
def test_the_inclusion_proof_made_here_is_the_vectors(case: dict[str, Any]) -> None:
    leaves = LEAVES[: case["treeSize"]]
    assert merkle.inclusion_proof(leaves, case["leafIdx"]) == _proof(case)


@pytest.mark.parametrize(
    "case",
    [c for c in VECTORS["consistency"] if not c["wantErr"] and c["size1"] < c["size2"]],
    ids=lambda c: c["file"],
)
def test_the_consistency_proof_made_here_is_the_vectors(case: dict[str, Any]) -> None:
    leaves = LEAVES[: case["size2"]]
    assert merkle.consistency_proof(leaves, case["size1"]) == _proof(case)


def test_every_proof_made_for_trees_up_to_40_leaves_verifies() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(40)]
    for size in range(1, 41):
        tree = leaves[:size]
        root = merkle.root_hash(tree)
        for index in range(size):
            assert merkle.verify_inclusion(
                tree[index], index, size, merkle.inclusion_proof(tree, index), root
            )
        for old in range(1, size + 1):
            proof = merkle.consistency_proof(tree, old)
            assert merkle.verify_consistency(old, size, merkle.root_hash(tree[:old]), root, proof)


def test_a_changed_leaf_fails_its_proof_and_changes_the_root() -> None:
    leaves = list(LEAVES)
    proof = merkle.inclusion_proof(leaves, 3)
    forged = merkle.leaf_hash(b"something else")
    assert not merkle.verify_inclusion(forged, 3, 8, proof, ROOTS[8])
    leaves[3] = forged
    assert merkle.root_hash(leaves) != ROOTS[8]


def test_the_growing_tree_gives_the_rfcs_roots_and_proofs_at_every_size() -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(70)]
    tree = merkle.MerkleTree()
    for size in range(1, 71):
        tree.append(leaves[size - 1])
        assert tree.root() == merkle.root_hash(leaves[:size])
    for size in range(1, 71):
        assert tree.root(size) == merkle.root_hash(leaves[:size])
        for index in range(size):
            assert tree.inclusion_proof(index, size) == merkle.inclusion_proof(leaves[:size], index)
        for old in range(1, size + 1):
            assert tree.consistency_proof(old, size) == merkle.consistency_proof(leaves[:size], old)
    assert merkle.MerkleTree(LEAVES).root() == ROOTS[8]
