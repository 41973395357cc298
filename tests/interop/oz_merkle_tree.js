// Runs @openzeppelin/merkle-tree for tests/test_onchain_merkle.py; reads one JSON request on stdin.
//   {"op": "load", "dump": {...}, "proofs": [{"value": [...], "proof": ["0x.."]}]}
//     -> {"root", "proofs": [{"index", "proof"}], "verified": [bool per given proof]}
//   {"op": "build", "values": [[...]], "leafEncoding": [...], "sortLeaves": bool}
//     -> {"dump": {...}, "root", "proofs": [proof per value]}
"use strict";
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");

function proofsOf(tree) {
  const out = [];
  for (const [i] of tree.entries()) out.push(tree.getProof(i));
  return out;
}

function main(request) {
  if (request.op === "load") {
    const tree = StandardMerkleTree.load(request.dump);
    const verified = (request.proofs || []).map(p =>
      StandardMerkleTree.verify(tree.root, request.dump.leafEncoding, p.value, p.proof),
    );
    return { root: tree.root, proofs: proofsOf(tree), verified };
  }
  if (request.op === "build") {
    const tree = StandardMerkleTree.of(request.values, request.leafEncoding, {
      sortLeaves: request.sortLeaves !== false,
    });
    return { dump: tree.dump(), root: tree.root, proofs: proofsOf(tree) };
  }
  throw new Error(`unknown op ${request.op}`);
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", chunk => (input += chunk));
process.stdin.on("end", () => {
  process.stdout.write(JSON.stringify(main(JSON.parse(input))));
});
