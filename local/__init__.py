"""Running the pipeline on this machine: `python local_runner.py` is a thin CLI over `run.py`.

Before anything is written: `preflight` checks the input CSV and the output
folder, `lock` keeps a second run out of the same folder. During the run:
`progress` prints a line per component and sends TensorFlow's noise to a log
file. After it: `summary` prints what the run did, as `metadata.outcome` read
it back from ML Metadata (the record the report, the lineage and the
benchmarks use), and `run` writes the report.
"""
