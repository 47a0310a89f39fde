"""Scale benchmark: the operator against a thousand RollupJobs (``python -m devtools.bench``; see devtools/bench/README.md and docs/benchmarks.md)."""
