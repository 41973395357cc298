"""The guardian-recovery pillar: a pure policy state machine, signed actions, escrowed shares,
a tamper-evident log, and the service that persists and serves them."""
