"""Building the DAG writes nothing, and an edited schema is imported again.

The second test runs the real ImportSchemaGen node under LocalDagRunner with
TFX's cache on, three times: the unchanged schema is taken from the cache,
the edited one is imported anew.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.configs import PipelineConfig
from pipeline.pipeline import create_pipeline, schema_import, sqlite_metadata

ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path) -> PipelineConfig:
    schema = tmp_path / "schema.pbtxt"
    if not schema.exists():
        shutil.copy(ROOT / "schema" / "schema.pbtxt", schema)
    return PipelineConfig(output_dir=str(tmp_path / "out"), schema_path=str(schema))


def test_building_the_pipeline_writes_nothing(tmp_path: Path):
    config = _config(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    create_pipeline(config)
    assert sorted(tmp_path.rglob("*")) == before


def _import_schema(config: PipelineConfig) -> str:
    """Run the ImportSchemaGen node alone; how ML Metadata recorded this execution."""
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.orchestration.pipeline import Pipeline

    Path(config.output_dir).mkdir(exist_ok=True)
    connection = sqlite_metadata(config.metadata_path)
    LocalDagRunner().run(Pipeline(
        pipeline_name="schema_only", pipeline_root=config.pipeline_root,
        components=[schema_import(config)], enable_cache=True,
        metadata_connection_config=connection))
    store = metadata_store.MetadataStore(connection)
    last = max(store.get_executions(), key=lambda e: e.id)
    return metadata_store_pb2.Execution.State.Name(last.last_known_state)


def test_an_edited_schema_is_imported_again(tmp_path: Path):
    config = _config(tmp_path)
    assert _import_schema(config) == "COMPLETE"
    assert _import_schema(config) == "CACHED"
    schema = Path(config.schema_path)
    schema.write_text(schema.read_text() + "\n# reviewed again\n")
    assert _import_schema(config) == "COMPLETE"
