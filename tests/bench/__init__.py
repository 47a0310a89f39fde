"""Scale benchmark: the operator against a thousand RollupJobs (``python -m tests.bench``; see tests/bench/README.md and docs/benchmarks.md)."""
