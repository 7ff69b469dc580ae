"""Orchestrators that run the pipeline one TFX node per task: Luigi and Azure Machine Learning.

`ir.py` compiles the pipeline once per run (no credentials in it, the run id
left open); `node_runner.py` runs one node of it through TFX's portable
launcher and says from ML Metadata whether it completed. `luigi_run.py` makes
a Luigi task of every node; `azureml_job.py` an Azure ML pipeline job step.
"""
