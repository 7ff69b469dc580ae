"""The Pusher: warm-up requests, TFX Pusher's artifact contract, atomic versions."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from tfx.types import standard_artifacts

from metadata.graph import MetadataGraph
from metadata.store import open_store
from models import contract, features
from pipeline.components import publish, pusher
from serving import warmup
from serving.examples import without_label


def read_warmup(model_dir: Path) -> list:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = model_dir / contract.WARMUP_FILE
    return [
        prediction_log_pb2.PredictionLog.FromString(record)
        for record in tf.compat.v1.io.tf_record_iterator(str(path))
    ]


def example_key(serialized: bytes) -> tuple:
    """An order-independent, hashable view of a tf.Example's features."""
    from tensorflow.core.example import example_pb2

    example = example_pb2.Example.FromString(serialized)
    items = []
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        items.append((name, kind, tuple(getattr(feature, kind).value) if kind else ()))
    return tuple(sorted(items))


def serving_signature(model_dir: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((model_dir / "saved_model.pb").read_bytes())
    [meta_graph] = [m for m in saved_model.meta_graphs if "serve" in m.meta_info_def.tags]
    return meta_graph.signature_def[contract.SIGNATURE_NAME]


def recorded(pipeline_run, component: str, type_name: str, artifact_class):
    """The artifact `component` output in the pipeline run, as recorded in ML Metadata."""
    store = open_store(str(pipeline_run.metadata_path))
    run_id = MetadataGraph(store).run_ids()[0]
    [mlmd_artifact] = MetadataGraph(store).node_outputs(run_id, component, type_name)
    artifact = artifact_class()
    artifact.set_mlmd_artifact(mlmd_artifact)
    return artifact


def eval_examples(pipeline_run) -> list[bytes]:
    """Every example of the run's eval split, read independently of the Pusher."""
    import tensorflow as tf

    examples = recorded(pipeline_run, "CsvExampleGen", "Examples", standard_artifacts.Examples)
    split = Path(examples.uri) / "Split-eval"
    files = sorted(str(p) for p in split.glob("*.gz"))
    assert files, f"no eval split files in {split}"
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


# --------------------------------------------------------------------------- warm-up


@pytest.mark.e2e
def test_warmup_file_holds_valid_serving_default_requests(pushed_model_dir):
    from tensorflow.core.framework import types_pb2
    from tensorflow.core.protobuf import meta_graph_pb2  # noqa: F401 - proto registry

    logs = read_warmup(pushed_model_dir)
    signature = serving_signature(pushed_model_dir)
    assert 0 < len(logs) <= contract.MAX_WARMUP_RECORDS
    sizes = []
    for log in logs:
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        assert request.model_spec.name == contract.MODEL_NAME
        assert request.model_spec.signature_name == contract.SIGNATURE_NAME
        assert set(request.inputs) == set(signature.inputs) == {contract.INPUT_KEY}
        tensor = request.inputs[contract.INPUT_KEY]
        assert tensor.dtype == signature.inputs[contract.INPUT_KEY].dtype == types_pb2.DT_STRING
        assert [d.size for d in tensor.tensor_shape.dim] == [len(tensor.string_val)]
        assert set(request.output_filter) <= set(signature.outputs)
        sizes.append(len(tensor.string_val))
    # Every batch size up to the batcher's max_batch_size gets warmed up.
    assert sizes == list(warmup.WARMUP_BATCH_SIZES)
    assert sizes[-1] == contract.MAX_BATCH_SIZE


@pytest.mark.e2e
def test_warmup_examples_are_real_eval_examples_without_the_label(pushed_model_dir, pipeline_run):
    expected = {example_key(without_label(r)) for r in eval_examples(pipeline_run)}
    for log in read_warmup(pushed_model_dir):
        for serialized in log.predict_log.request.inputs[contract.INPUT_KEY].string_val:
            key = example_key(serialized)
            assert features.TIPS_KEY not in {name for name, _, _ in key}
            assert key in expected


@pytest.mark.e2e
def test_every_warmup_request_is_answered_by_the_model(pushed_model_dir):
    import numpy as np
    import tensorflow as tf

    serve = tf.saved_model.load(str(pushed_model_dir)).signatures[contract.SIGNATURE_NAME]
    for log in read_warmup(pushed_model_dir):
        batch = tf.make_ndarray(log.predict_log.request.inputs[contract.INPUT_KEY])
        probability = serve(examples=tf.constant(batch))[contract.OUTPUT_KEY].numpy()
        assert probability.shape == (len(batch),)
        assert np.all((probability >= 0) & (probability <= 1))


# --------------------------------------------------------------------------- artifact


def pushed_model_artifact(metadata_path: Path):
    store = open_store(str(metadata_path))
    run_id = MetadataGraph(store).run_ids()[0]
    [artifact] = MetadataGraph(store).node_outputs(run_id, "Pusher", "PushedModel")
    return artifact


@pytest.mark.e2e
def test_pushed_model_artifact_has_tfx_pusher_properties(pipeline_run, pushed_model_dir):
    artifact = pushed_model_artifact(pipeline_run.metadata_path)
    properties = artifact.custom_properties
    assert properties["pushed"].int_value == 1
    assert properties["pushed_destination"].string_value == str(pushed_model_dir)
    assert properties["pushed_version"].string_value == pushed_model_dir.name
    check = json.loads(properties["serving_check"].string_value)
    assert check["warmup_records"] == len(warmup.WARMUP_BATCH_SIZES)
    assert check["imported_op_libraries"] == []
    # The artifact archives exactly what was pushed, warm-up included.
    archived = Path(artifact.uri)
    assert (archived / contract.WARMUP_FILE).read_bytes() == (
        pushed_model_dir / contract.WARMUP_FILE
    ).read_bytes()


def trainer_model(pipeline_run) -> standard_artifacts.Model:
    return recorded(pipeline_run, "Trainer", "Model", standard_artifacts.Model)


def blessing(blessed: int) -> standard_artifacts.ModelBlessing:
    artifact = standard_artifacts.ModelBlessing()
    artifact.set_int_custom_property("blessed", blessed)
    return artifact


def fresh_pushed_model(tmp_path: Path) -> standard_artifacts.PushedModel:
    artifact = standard_artifacts.PushedModel()
    artifact.uri = str(tmp_path / "pushed_model")
    os.makedirs(artifact.uri)
    return artifact


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.e2e
def test_a_model_that_is_not_blessed_is_not_pushed(pipeline_run, pushed_model_dir, tmp_path):
    before = tree(pipeline_run.serving_base)
    artifact = fresh_pushed_model(tmp_path)
    pushed = pusher.push(
        trainer_model(pipeline_run), blessing(0), None, artifact, str(pipeline_run.serving_base)
    )
    assert not pushed
    assert artifact.get_int_custom_property("pushed") == 0
    assert artifact.get_string_custom_property("not_pushed_reason") == (
        "the model was not blessed by the Evaluator"
    )
    assert tree(pipeline_run.serving_base) == before


@pytest.mark.e2e
def test_the_model_already_served_is_not_pushed_again(pipeline_run, pushed_model_dir, tmp_path):
    before = tree(pipeline_run.serving_base)
    artifact = fresh_pushed_model(tmp_path)
    pushed = pusher.push(
        trainer_model(pipeline_run), blessing(1), None, artifact, str(pipeline_run.serving_base)
    )
    assert pushed
    assert artifact.get_string_custom_property("pushed_destination") == str(pushed_model_dir)
    assert artifact.get_string_custom_property("pushed_version") == pushed_model_dir.name
    assert tree(pipeline_run.serving_base) == before


# --------------------------------------------------------------------------- versions


def test_a_new_version_is_the_time_but_always_above_existing_ones(tmp_path):
    assert publish.next_version(str(tmp_path / "absent"), now=1_700_000_000.7) == 1_700_000_000
    (tmp_path / "1800000000").mkdir()
    (tmp_path / ".incoming-1900000000-abc").mkdir()  # not a version
    (tmp_path / "notes").mkdir()
    assert publish.next_version(str(tmp_path), now=1_700_000_000) == 1_800_000_001
    assert publish.next_version(str(tmp_path), now=1_900_000_000) == 1_900_000_000


def fake_model(path: Path, files: int = 300, size: int = 64 * 1024) -> Path:
    """A SavedModel-shaped folder big enough that copying it takes a while."""
    (path / "variables").mkdir(parents=True)
    for i in range(files):
        (path / "variables" / f"variables.data-{i:05d}").write_bytes(os.urandom(size))
    (path / "saved_model.pb").write_bytes(b"graph")
    return path


class VersionWatcher(threading.Thread):
    """Polls a base path as TF Serving does (but far more often) and records
    every numeric folder it ever sees that does not hold the whole model."""

    def __init__(self, base: Path, expected: set[str]):
        super().__init__(daemon=True)
        self.base, self.expected = base, expected
        self.partial: list[tuple[str, int]] = []
        self.complete: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for entry in list(os.scandir(self.base)) if self.base.exists() else []:
                if not entry.name.isdigit():
                    continue
                root = Path(entry.path)
                seen = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
                if seen == self.expected:
                    self.complete.add(entry.name)
                else:
                    self.partial.append((entry.name, len(seen)))


def watch_publish(staged: Path, base: Path) -> VersionWatcher:
    expected = {str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()}
    watcher = VersionWatcher(base, expected)
    watcher.start()
    try:
        destination, version = publish.publish(str(staged), str(base))
        time.sleep(0.05)
    finally:
        watcher.stop.set()
        watcher.join()
    assert destination == str(base / str(version))
    return watcher


def test_a_version_never_appears_half_written(tmp_path):
    staged = fake_model(tmp_path / "staged")
    base = tmp_path / "serving_model" / contract.MODEL_NAME
    watcher = watch_publish(staged, base)
    assert watcher.partial == []
    assert len(watcher.complete) == 1
    assert [p.name for p in base.iterdir()] == list(watcher.complete)


def test_the_watcher_catches_a_copy_made_in_place(tmp_path, monkeypatch):
    # Object stores get an in-place copy (no atomic rename); on a local disk
    # the same copy would be seen half-written, which the watcher must notice.
    monkeypatch.setattr(publish, "is_local", lambda path: False)
    staged = fake_model(tmp_path / "staged")
    watcher = watch_publish(staged, tmp_path / "base")
    assert watcher.partial


def test_a_push_killed_midway_leaves_no_version_and_is_cleaned_up_later(tmp_path, monkeypatch):
    staged = fake_model(tmp_path / "staged", files=20, size=1024)
    base = tmp_path / "base"
    copied = []
    original = publish.fileio.copy

    def dying_copy(source, destination, *args, **kwargs):
        if len(copied) == 10:
            raise KeyboardInterrupt("killed")
        copied.append(destination)
        return original(source, destination, *args, **kwargs)

    monkeypatch.setattr(publish.fileio, "copy", dying_copy)
    with pytest.raises(KeyboardInterrupt):
        publish.publish(str(staged), str(base))
    monkeypatch.undo()
    [leftover] = list(base.iterdir())
    assert leftover.name.startswith(publish.TEMP_PREFIX) and not leftover.name.isdigit()
    # A later push removes it once it is stale, and publishes normally.
    old = time.time() - publish.STALE_TEMP_SECONDS - 1
    os.utime(leftover, (old, old))
    destination, _ = publish.publish(str(staged), str(base))
    assert [p.name for p in base.iterdir()] == [Path(destination).name]
