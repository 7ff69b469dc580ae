"""Side-by-side benchmark: this project's pipeline against TFX's own taxi example.

`python -m benchmarks --help` (or `make bench ARGS="..."`). Both pipelines run
as separate processes on the same generated input, alternating, and each run's
wall time, CPU time, peak memory and per-component times (from ML Metadata) are
printed, ending with a markdown table for docs/benchmarks.md.
"""
