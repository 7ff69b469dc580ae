"""ImportSchemaGen whose cache follows the curated schema's content, not its path.

TFX caches a component on its parameters and inputs. Stock ImportSchemaGen's
only parameter is the schema file's *path*, so an edited schema.pbtxt would
silently keep the old schema on the next run. This component adds the
content's SHA-256 as a second parameter: an edited file changes it, and
ImportSchemaGen (and everything downstream) runs again. The digest is read
while the DAG is built; nothing is written then. The executor is TFX's own.

Remote runs read the schema from the pipeline image, which changes with it,
and the compiling machine may not hold that file: they pass no digest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tfx import types
from tfx.components.schema_gen.import_schema_gen import executor as import_schema_gen_executor
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ExecutionParameter

SCHEMA_SHA256 = "schema_sha256"


def schema_digest(schema_path: str) -> str:
    """SHA-256 of the schema file's bytes, hex."""
    return hashlib.sha256(Path(schema_path).read_bytes()).hexdigest()


class ContentImportSchemaGenSpec(standard_component_specs.ImportSchemaGenSpec):
    """ImportSchemaGen's parameters plus the schema's digest (ignored by the executor)."""

    PARAMETERS = {
        **standard_component_specs.ImportSchemaGenSpec.PARAMETERS,
        SCHEMA_SHA256: ExecutionParameter(type=str, optional=True),
    }


class ContentImportSchemaGen(base_component.BaseComponent):
    """Stock ImportSchemaGen (its executor and output), re-run whenever the
    schema file's content changes."""

    SPEC_CLASS = ContentImportSchemaGenSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(import_schema_gen_executor.Executor)

    def __init__(self, schema_file: str, schema_sha256: str | None = None):
        # Without a digest the node's parameters are exactly stock ImportSchemaGen's.
        digest = {} if schema_sha256 is None else {SCHEMA_SHA256: schema_sha256}
        spec = ContentImportSchemaGenSpec(
            schema_file=schema_file,
            schema=types.Channel(type=standard_artifacts.Schema),
            **digest,
        )
        super().__init__(spec=spec)
