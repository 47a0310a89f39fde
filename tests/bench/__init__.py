"""Scale benchmark: the operator against a thousand RollupJobs (``python -m tests.bench``; see README.md)."""
