"""A finding: one problem of one feature, as the gate, the drift checks and monitoring report it.

A finding is a plain dict {"feature", "split", "type", "description"}: it is
written to JSON as is (the gate's refusal record, read by the report) and
printed one per line. The drift checks (`drift.py`) and the gate (`gate.py`)
both make findings from TFDV's Anomalies protos; this module is below both, so
neither imports the other to do it.
"""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import anomalies_pb2

from metadata.artifacts import visible


def _type_name(reason: anomalies_pb2.AnomalyInfo.Reason) -> str:
    return anomalies_pb2.AnomalyInfo.Type.Name(reason.type)


def findings(anomalies: anomalies_pb2.Anomalies, split: str) -> list[dict]:
    """One dict per (feature, reason) of an Anomalies proto."""
    result = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason:
            result.append(
                {
                    "feature": feature,
                    "split": split,
                    "type": _type_name(reason),
                    "description": reason.description or info.description,
                }
            )
    if anomalies.HasField("dataset_anomaly_info"):
        for reason in anomalies.dataset_anomaly_info.reason:
            result.append(
                {"feature": "(dataset)", "split": split, "type": _type_name(reason),
                 "description": reason.description}
            )
    return result


def is_allowed(finding: dict, allowed: list[str]) -> bool:
    """True when `allowed` names the finding's feature, or feature:TYPE."""
    return any(
        entry == finding["feature"] or entry == f"{finding['feature']}:{finding['type']}"
        for entry in allowed
    )


def parse_allowed(text: str) -> list[str]:
    """The --allow-anomaly entries, as the gate's comma-separated parameter holds them."""
    return [entry.strip() for entry in text.split(",") if entry.strip()]


def evaluate(found: list[dict], allowed: list[str]) -> tuple[list[dict], list[dict]]:
    """(blocking, allowed) findings."""
    return ([f for f in found if not is_allowed(f, allowed)],
            [f for f in found if is_allowed(f, allowed)])


def finding_line(finding: dict) -> str:
    """One finding as the gate prints it (monitoring.check prints its findings the same way)."""
    return (f"  - {visible(finding['feature'])} ({finding['split']} split): "
            f"{finding['description']} [{finding['type']}]")
