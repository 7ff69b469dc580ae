"""Every option of every runner and tool, declared once (`declared.py`), built into argparse
parsers that also read each option from an environment variable where a runner needs one
(`option.py`).

The local runner, Luigi, the Airflow DAG file, Kubeflow and Azure ML build one
`PipelineConfig` from the same declarations: a flag's name, type, help and
environment variable are written in one place, and a runner picks the options
it takes. `--metadata-mysql` is here too, for every command that opens ML
Metadata.
"""
