"""Running the pipeline on this machine: `python local_runner.py` is a thin CLI over `run.py`.

Before anything is written: `preflight` checks the input CSV and the output
folder, `lock` keeps a second run out of the same folder. During the run:
`progress` prints a line per component and sends TensorFlow's noise to a log
file. After it: `summary` reads back from ML Metadata what the run did (the
same functions the benchmarks and tests use) and `run` writes the report.
"""
