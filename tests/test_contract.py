"""The serving contract is one leaf module, and serving/ no longer imports pipeline/."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from models import contract

ROOT = Path(__file__).resolve().parent.parent


def test_the_contract_imports_nothing():
    """A leaf: anything may import it without loading TensorFlow or the pipeline."""
    tree = ast.parse((ROOT / "models" / "contract.py").read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append(node.module)
    assert imported == ["__future__"]


def test_serving_loads_neither_the_pipeline_nor_tensorflow():
    code = (
        "import json, sys; import serving, serving.client; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=True)
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "models" in loaded, "serving reads the contract from models.contract"
    assert loaded & {"pipeline", "tensorflow", "tfx", "keras", "tf_keras"} == set()


def test_serving_and_the_pipeline_use_the_contracts_names():
    import serving
    from pipeline import configs

    for name in ("MODEL_NAME", "SIGNATURE_NAME", "INPUT_KEY", "OUTPUT_KEY", "WARMUP_FILE",
                 "MAX_WARMUP_RECORDS", "MAX_BATCH_SIZE"):
        assert getattr(serving, name) is getattr(contract, name), name
    assert configs.MODEL_NAME is contract.MODEL_NAME


def test_the_model_check_reads_the_contract():
    """serving/model_check.py takes the contract's names, imported from the leaf module."""
    from serving import model_check

    assert model_check.WARMUP_FILE is contract.WARMUP_FILE
    assert model_check.MAX_WARMUP_RECORDS is contract.MAX_WARMUP_RECORDS
    assert model_check.parse_args(["model"]).signature == contract.SIGNATURE_NAME


def test_the_evaluator_scores_through_the_contracts_signatures(tmp_path):
    from pipeline.configs import PipelineConfig
    from pipeline.pipeline import eval_config

    (spec,) = eval_config(PipelineConfig(output_dir=str(tmp_path))).model_specs
    assert spec.signature_name == contract.SIGNATURE_NAME
    assert spec.prediction_key == contract.OUTPUT_KEY
    assert list(spec.preprocessing_function_names) == [contract.TRANSFORM_SIGNATURE_NAME]
