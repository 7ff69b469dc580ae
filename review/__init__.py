"""Looking at recorded runs afterwards, from ML Metadata and the artifacts it points to.

`report` writes the HTML page of a run, `lineage` answers which data and
executions produced a pushed model, `schema_draft` infers a draft schema from
a run's statistics. Everything here reads through `metadata/` and never needs
the process that ran the pipeline; importing these modules does not load
TensorFlow (TFMA and TFDV are loaded only where an artifact needs them).
"""
