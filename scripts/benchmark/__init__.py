"""The benchmark suite behind scripts/bench (see docs/performance.md)."""
