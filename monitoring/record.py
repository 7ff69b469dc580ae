"""Record a check of served requests in ML Metadata, linked to the model that answered.

One `RequestCheck` execution per check, under the `monitoring` context
`request_checks`: its input is the PushedModel artifact of the version that
answered (so lineage runs from the training data, through the push, to every
check of its traffic), its output a `RequestStatistics` artifact pointing at
the window's statistics. The outcome, the findings and the report's path are
execution properties, so other tools read a check's result without parsing
its page.
"""

from __future__ import annotations

import json

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from metadata import names

_STRING, _INT = metadata_store_pb2.STRING, metadata_store_pb2.INT
_EXECUTION_PROPERTIES = {"outcome": _STRING, "requests": _INT, "version": _STRING,
                         "report": _STRING, "findings": _STRING, "requests_dir": _STRING}


def _type_id(store: metadata_store.MetadataStore, kind: str, name: str, properties: dict) -> int:
    proto = {"execution": metadata_store_pb2.ExecutionType,
             "artifact": metadata_store_pb2.ArtifactType,
             "context": metadata_store_pb2.ContextType}[kind](name=name)
    for key, value in properties.items():
        proto.properties[key] = value
    put = getattr(store, f"put_{kind}_type")
    return put(proto, can_add_fields=True)


def record_check(store: metadata_store.MetadataStore, result: dict, statistics_uri: str,
                 pushed_id: int | None) -> int:
    """Put one check (the dict monitoring.check writes as result.json); its execution id."""
    execution = metadata_store_pb2.Execution(
        type_id=_type_id(store, "execution", names.REQUEST_CHECK, _EXECUTION_PROPERTIES),
        last_known_state=metadata_store_pb2.Execution.COMPLETE,
    )
    execution.properties["outcome"].string_value = result["outcome"]
    execution.properties["requests"].int_value = int(result["requests"])
    execution.properties["version"].string_value = str(result.get("version") or "")
    execution.properties["report"].string_value = result["report"]
    execution.properties["findings"].string_value = json.dumps(result["findings"])
    execution.properties["requests_dir"].string_value = result["requests_dir"]
    statistics = metadata_store_pb2.Artifact(
        type_id=_type_id(store, "artifact", names.REQUEST_STATISTICS, {"requests": _INT}),
        uri=statistics_uri, state=metadata_store_pb2.Artifact.LIVE,
    )
    statistics.properties["requests"].int_value = int(result["requests"])
    context_type = _type_id(store, "context", names.MONITORING_CONTEXT, {})
    context = store.get_context_by_type_and_name(names.MONITORING_CONTEXT, names.REQUEST_CHECKS)
    if context is None:
        context = metadata_store_pb2.Context(type_id=context_type, name=names.REQUEST_CHECKS)
    pairs = [(statistics, _event(metadata_store_pb2.Event.OUTPUT, "statistics"))]
    if pushed_id is not None:
        served = store.get_artifacts_by_id([pushed_id])
        pairs += [(served[0], _event(metadata_store_pb2.Event.INPUT, "served_model"))]
    execution_id, _, _ = store.put_execution(execution, pairs, [context],
                                             reuse_context_if_already_exist=True)
    return execution_id


def _event(kind: int, key: str) -> metadata_store_pb2.Event:
    event = metadata_store_pb2.Event(type=kind)
    event.path.steps.add().key = key
    return event

