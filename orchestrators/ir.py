"""The compiled pipeline that every node runner reads: TFX's intermediate representation.

`create_pipeline(config)` is compiled once per run by TFX's own compiler (the
one `LocalDagRunner` uses) into a `pipeline_pb2.Pipeline`. Orchestrators that
run one node per task (Luigi, Azure ML) hand each task this file; the task runs
its node with `orchestrators.node_runner`.

Two things are removed or left open on purpose:

* the ML Metadata connection: TFX would pack the pipeline's connection config,
  MySQL password included, into the IR. It is stripped here; each node runner
  opens ML Metadata from its own command line and environment instead;
* the run id: it stays TFX's runtime parameter `pipeline-run-id`, bound by each
  node runner, so one compiled file serves every run (and every scheduled run
  gets its own id).

`plan.json`, written next to it, is the same DAG in plain JSON (node ids in
execution order, each with its upstream nodes): an orchestrator's main process
reads it without loading TensorFlow, which matters where it forks workers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

IR_FILE = "pipeline.pb"
PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Plan:
    """The DAG an orchestrator schedules: node ids in execution order, with their upstreams."""

    pipeline_name: str
    nodes: dict[str, list[str]]  # node id -> upstream node ids, in TFX's execution order

    @property
    def order(self) -> list[str]:
        return list(self.nodes)

    def downstream(self, node: str) -> list[str]:
        return [n for n, ups in self.nodes.items() if node in ups]

    @property
    def sinks(self) -> list[str]:
        """Nodes nothing depends on: building them builds the whole DAG."""
        return [n for n in self.nodes if not self.downstream(n)]

    def to_json(self) -> str:
        return json.dumps({"pipeline_name": self.pipeline_name, "nodes": self.nodes}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        return cls(data["pipeline_name"], {k: list(v) for k, v in data["nodes"].items()})


def compile_ir(config):
    """The IR of `create_pipeline(config)`, without any ML Metadata connection in it."""
    from tfx.dsl.compiler import compiler
    from tfx.proto.orchestration import pipeline_pb2

    from pipeline.pipeline import create_pipeline

    ir = compiler.Compiler().compile(create_pipeline(config))
    deployment = pipeline_pb2.IntermediateDeploymentConfig()
    if not ir.deployment_config.Unpack(deployment):
        raise ValueError(f"unexpected deployment config {ir.deployment_config.type_url}")
    deployment.ClearField("metadata_connection_config")  # no credentials in a compiled file
    ir.deployment_config.Pack(deployment)
    return ir


def plan_of(ir) -> Plan:
    """The node graph of a compiled pipeline."""
    nodes = {
        node.pipeline_node.node_info.id: list(node.pipeline_node.upstream_nodes)
        for node in ir.nodes
    }
    return Plan(ir.pipeline_info.id, nodes)


def write(ir, folder: str) -> tuple[str, str]:
    """`folder/pipeline.pb` and `folder/plan.json`, each written whole or not at all."""
    os.makedirs(folder, exist_ok=True)
    ir_path, plan_path = os.path.join(folder, IR_FILE), os.path.join(folder, PLAN_FILE)
    for path, data in ((ir_path, ir.SerializeToString()),
                       (plan_path, plan_of(ir).to_json().encode())):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)
    return ir_path, plan_path


def load(path: str):
    """A compiled pipeline from `write`; ValueError in one line when the file is not one."""
    from google.protobuf.message import DecodeError
    from tfx.proto.orchestration import pipeline_pb2

    ir = pipeline_pb2.Pipeline()
    try:
        with open(path, "rb") as f:
            ir.ParseFromString(f.read())
    except (OSError, DecodeError) as error:
        raise ValueError(f"cannot read the compiled pipeline {path}: {error}") from None
    if not ir.nodes:
        raise ValueError(f"{path} holds no pipeline nodes: is it a compiled pipeline?")
    return ir


def load_plan(path: str) -> Plan:
    with open(path) as f:
        return Plan.from_json(f.read())


def main(argv: list[str] | None = None) -> int:
    """`python -m orchestrators.ir CONFIG_JSON FOLDER`: compile in a process of its own.

    Orchestrators that fork workers call this so that their own process never
    loads TensorFlow (forking after it is loaded is unsafe).
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("config_json", help="a PipelineConfig as written by configs.to_json")
    parser.add_argument("folder", help="where pipeline.pb and plan.json go")
    args = parser.parse_args(argv)
    from pipeline.configs import config_from_json

    with open(args.config_json) as f:
        config = config_from_json(f.read())
    write(compile_ir(config), args.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
