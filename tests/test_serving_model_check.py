"""The pre-push check that stock TF Serving can load and run a model.

Each rejected model here is a real way to build an unservable model: a
`tf.py_function` in the serving graph, and an op from a compiled op library
(how tensorflow-text and friends register theirs), exported by a process that
had loaded it. Models are exported in subprocesses, as a training process would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tfx.types import standard_artifacts

import serving
from metadata.graph import MetadataGraph
from metadata.store import open_store
from models import contract
from pipeline.components import pusher
from serving import serving_check, warmup

# Saves TensorFlow models and starts the check's subprocess (it imports TensorFlow):
# the slow tier.
pytestmark = pytest.mark.slow

# Exports a tiny SavedModel shaped like ours: serialized tf.Examples -> probability.
EXPORT_SCRIPT = textwrap.dedent(
    """
    import sys
    import tensorflow as tf

    kind, out = sys.argv[1], sys.argv[2]
    library = tf.load_op_library(sys.argv[3]) if kind == "custom_op" else None

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            parsed = tf.io.parse_example(
                examples, {"fare": tf.io.FixedLenFeature([], tf.float32, default_value=0.0)}
            )
            probability = tf.sigmoid(parsed["fare"] * 0.1 - 1.0)
            if kind == "py_function":
                probability = tf.py_function(lambda p: p, [probability], tf.float32)
                probability.set_shape([None])
            elif kind == "custom_op":
                probability = library.taxi_test_identity(probability)
            return {"probability": probability}

    model = Model()
    tf.saved_model.save(model, out, signatures={"serving_default": model.serve})
    """
)
CUSTOM_OP_SOURCE = textwrap.dedent(
    """
    #include "tensorflow/core/framework/op.h"
    #include "tensorflow/core/framework/op_kernel.h"
    using namespace tensorflow;
    REGISTER_OP("TaxiTestIdentity").Input("x: float").Output("y: float");
    class TaxiTestIdentityOp : public OpKernel {
     public:
      explicit TaxiTestIdentityOp(OpKernelConstruction* c) : OpKernel(c) {}
      void Compute(OpKernelContext* c) override { c->set_output(0, c->input(0)); }
    };
    REGISTER_KERNEL_BUILDER(Name("TaxiTestIdentity").Device(DEVICE_CPU), TaxiTestIdentityOp);
    """
)


def fare_examples(fares: list[float]) -> list[bytes]:
    from tensorflow.core.example import example_pb2

    examples = []
    for fare in fares:
        example = example_pb2.Example()
        example.features.feature["fare"].float_list.value.append(fare)
        examples.append(example.SerializeToString())
    return examples


def export(kind: str, out: Path, *extra: str) -> Path:
    """Export a tiny model of `kind` in a fresh process; add our warm-up file."""
    result = subprocess.run(
        [sys.executable, "-c", EXPORT_SCRIPT, kind, str(out), *extra],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    warmup.write_warmup(str(out), warmup.warmup_logs(fare_examples([3.0, 12.5, 40.0])))
    return out


@pytest.fixture(scope="module")
def core_model(tmp_path_factory) -> Path:
    return export("core", tmp_path_factory.mktemp("core") / "model")


@pytest.fixture(scope="module")
def py_function_model(tmp_path_factory) -> Path:
    return export("py_function", tmp_path_factory.mktemp("py_function") / "model")


@pytest.fixture(scope="module")
def custom_op_model(tmp_path_factory) -> Path:
    """A model using an op from a compiled op library, as tensorflow-text's ops are."""
    import tensorflow as tf

    if shutil.which("g++") is None:
        pytest.skip("g++ is needed to build a custom TensorFlow op library")
    folder = tmp_path_factory.mktemp("custom_op")
    (folder / "op.cc").write_text(CUSTOM_OP_SOURCE)
    library = folder / "taxi_test_op.so"
    flags = tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags()
    build = subprocess.run(
        ["g++", "-std=c++17", "-shared", "-fPIC", "-O0", str(folder / "op.cc"),
         "-o", str(library), *flags],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return export("custom_op", folder / "model", str(library))


def test_a_core_tensorflow_model_passes_and_answers_every_warmup_request(core_model):
    result = serving_check.run_serving_check(str(core_model))
    assert result.ok, result.reason
    assert result.details["warmup_records"] == len(warmup.WARMUP_BATCH_SIZES)
    assert result.details["examples"] == sum(warmup.WARMUP_BATCH_SIZES)
    assert result.details["imported_op_libraries"] == []


def test_a_tf_py_function_model_is_rejected(py_function_model):
    result = serving_check.run_serving_check(str(py_function_model))
    assert not result.ok
    assert "EagerPyFunc (tf.py_function)" in result.reason
    assert "TF Serving has no Python" in result.reason


def test_a_model_needing_an_op_library_is_rejected(custom_op_model):
    # The exporting process had the library loaded; TF Serving would not.
    result = serving_check.run_serving_check(str(custom_op_model))
    assert not result.ok
    assert "ops not registered in core TensorFlow: TaxiTestIdentity" in result.reason


def test_more_warmup_records_than_tf_serving_reads_is_rejected(core_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(core_model, model)
    [log] = warmup.warmup_logs(fare_examples([5.0]), batch_sizes=[1])
    warmup.write_warmup(str(model), [log] * (contract.MAX_WARMUP_RECORDS + 1))
    result = serving_check.run_serving_check(str(model))
    assert not result.ok
    assert "more than 1000 warm-up records" in result.reason


def test_a_warmup_request_for_another_input_is_rejected(core_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(core_model, model)
    [log] = warmup.warmup_logs(fare_examples([5.0]), batch_sizes=[1])
    inputs = log.predict_log.request.inputs
    inputs["inputs"].CopyFrom(inputs[contract.INPUT_KEY])
    del inputs[contract.INPUT_KEY]
    warmup.write_warmup(str(model), [log])
    result = serving_check.run_serving_check(str(model))
    assert not result.ok
    assert "do not match the signature's ['examples']" in result.reason


def test_the_check_process_audits_its_own_imports(core_model, monkeypatch):
    # tensorflow-transform sets TF_USE_LEGACY_KERAS=1 in the training process;
    # inherited, it makes TensorFlow import tf_keras, and the audit notices.
    result = subprocess.run(
        [sys.executable, "-m", "serving.model_check", str(core_model)],
        capture_output=True, text=True, timeout=300, cwd=Path(serving.__file__).parent.parent,
        env={**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    verdict = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 1 and not verdict["ok"]
    assert "imported tf_keras" in verdict["reason"]
    # The Pusher strips that variable from the check's environment, and the
    # check finds the project from any working directory.
    monkeypatch.setenv("TF_USE_LEGACY_KERAS", "1")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.chdir(core_model)
    assert serving_check.run_serving_check(str(core_model)).ok


@pytest.mark.e2e
def test_the_pushed_model_passes_with_only_tensorflow_imported(pushed_model_dir):
    result = serving_check.run_serving_check(str(pushed_model_dir))
    assert result.ok, result.reason
    assert result.details["imported_op_libraries"] == []
    assert result.details["warmup_records"] == len(warmup.WARMUP_BATCH_SIZES)


def _blessing(blessed: int) -> standard_artifacts.ModelBlessing:
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("blessed", blessed)
    return blessing


def _examples(pipeline_run) -> standard_artifacts.Examples:
    """The Examples artifact the pipeline run recorded (eval split for warm-up)."""

    store = open_store(str(pipeline_run.metadata_path))
    run_id = MetadataGraph(store).run_ids()[0]
    [recorded] = MetadataGraph(store).node_outputs(run_id, "CsvExampleGen", "Examples")
    examples = standard_artifacts.Examples()
    examples.set_mlmd_artifact(recorded)
    return examples


@pytest.mark.e2e
def test_a_blessed_model_failing_the_check_is_not_pushed(
    py_function_model, pipeline_run, tmp_path
):
    base = tmp_path / "serving_model" / contract.MODEL_NAME
    base.mkdir(parents=True)
    (base / "1").mkdir()  # a version already being served stays untouched
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    shutil.copytree(py_function_model, tmp_path / "model" / "Format-Serving")
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    os.makedirs(pushed.uri)

    assert not pusher.push(model, _blessing(1), _examples(pipeline_run), pushed, str(base))

    assert pushed.get_int_custom_property("pushed") == 0
    reason = pushed.get_string_custom_property("not_pushed_reason")
    assert reason.startswith("it failed the TF Serving check: the graph calls back into Python")
    assert sorted(p.name for p in base.iterdir()) == ["1"]
    assert list(Path(pushed.uri).iterdir()) == []
