"""Where candidates run: the executor protocol, the in-process executor, the Ray actor pool and
the pruning (multi-fidelity) service."""
