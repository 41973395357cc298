"""The on-chain pillar: Vyper contracts that let a protocol act on what Lifeboat can prove.

``contracts`` compiles and deploys the Vyper sources shipped in ``contracts/``; the other modules
build what those contracts check (orders signed by a FROST group, claim trees, recovery
approvals) and stay free of any chain connection, so they can be tested and used offline.
"""
