"""How one candidate is trained and scored: the trainer, init diagnostics, FLOP and memory
accounting, time limits. Imports torch."""
