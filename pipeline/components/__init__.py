"""The pipeline's own components and executors, one idea per module.

Each is a TFX component (or an executor plugged into a TFX component) that
`pipeline.pipeline.create_pipeline` places in the DAG: the streaming CSV
ExampleGen executor, the validation gate and its drift checks, feature
selection, the Evaluator with the served model as baseline, the Pusher, the
content-aware schema import, where the baselines live, StatisticsGen,
Transform and Trainer that sample large splits, and every TFX internal the
project relies on (`tfx_internals.py`, checked against one TFX version). They depend on
`models/` (features, serving contract), `serving/` (the pusher's model check)
and `metadata/` (the names readers look for), never on `pipeline.pipeline`.
"""
