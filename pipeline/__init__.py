"""The pipeline: the DAG (`pipeline.py`), its settings (`configs.py`) and how it is compiled.

`create_pipeline(config)` assembles TFX's standard components and this
project's own (`pipeline/components/`) into one DAG that runs unchanged under
the local runner, Airflow and Kubeflow. `kubeflow.py` and `kubeflow_submit.py`
compile and submit it for Kubeflow Pipelines / Vertex AI;
`components/tfx_internals.py` lists every TFX internal the project relies on.
`run_config.py` turns a runner's options into a checked configuration, after
the preflight (`preflight.py`) every runner on local files shares.
Running a pipeline locally is in `local/`, looking at its runs afterwards in
`review/`.
"""
