"""Development tools: the test harness, the Go tools, the OpenSearch node build, the benchmark, the sandbox,
the stop-path tracer (devtools/README.md). Not part of the operator; the operator never imports it."""
