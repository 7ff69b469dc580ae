"""The one layer that reads ML Metadata: where it lives, and what the pipeline records in it.

`store` opens the store (SQLite or MySQL); `names` holds every name a writer
and its readers must agree on (node ids, artifact types, property names,
execution states, report file names); `graph` is the read-only view of runs,
executions and artifacts; `artifacts` reads the payload files artifacts point
to; `evaluation` reads the Evaluator's output (blessing, metrics); `outcome`
works out once what a run did (blessed; pushed, kept or cached, and by which
run), the record the runner's summary, the report and the lineage all render.
They and the tests all read through this layer. It imports
nothing else from this project, so every layer may depend on it.
"""
