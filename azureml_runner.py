"""The pipeline as an Azure Machine Learning pipeline job: `python azureml_runner.py --help`.

`compile` writes the job (azure-ai-ml v2, one command step per TFX node) into
build/azureml/; `submit` sends it to a workspace. orchestrators/azureml_run.py
does the work; the Azure ML SDK runs in its own venv (`make azureml`).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from orchestrators import azureml_run

    sys.exit(azureml_run.main())
