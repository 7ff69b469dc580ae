"""TFX's own batch scoring: a minimal pipeline of CsvExampleGen + BulkInferrer.

`python -m benchmarks.bulk_inferrer --data-root D --model-dir V --output-dir O --mode MODE`

The peer of `python -m serving.batch_predict` in `python -m benchmarks batch`:
TFX's stock CsvExampleGen (one split, all rows) reads the CSV into tf.Examples,
an Importer hands it the same pushed version as a Model artifact, and the stock
BulkInferrer scores every example through the `serving_default` signature and
writes PredictionLogs. It runs under LocalDagRunner with Beam's direct runner
in the chosen mode, as TFX's examples do. Nothing here is ours but the wiring.
"""

from __future__ import annotations

import argparse
import os
import sys

PIPELINE_NAME = "bulk_inferrer_benchmark"
MODES = ("in_memory", "multi_processing")


def model_root(version_dir: str, output_dir: str) -> str:
    """A Model artifact folder whose serving model is `version_dir` (TFX looks under
    Format-Serving/, or serving_model_dir/ for artifacts it takes as old)."""
    root = os.path.join(output_dir, "model_artifact")
    os.makedirs(root, exist_ok=True)
    for name in ("Format-Serving", "serving_model_dir"):
        link = os.path.join(root, name)
        if not os.path.islink(link):
            os.symlink(os.path.abspath(version_dir), link)
    return root


def create_pipeline(data_root: str, version_dir: str, output_dir: str, mode: str):
    from tfx.proto import bulk_inferrer_pb2, example_gen_pb2
    from tfx.v1.components import BulkInferrer, CsvExampleGen
    from tfx.v1.dsl import Importer, Pipeline
    from tfx.v1.orchestration.metadata import sqlite_metadata_connection_config
    from tfx.v1.types.standard_artifacts import Model

    one_split = example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(
        splits=[example_gen_pb2.SplitConfig.Split(name="all", hash_buckets=1)]))
    example_gen = CsvExampleGen(input_base=data_root, output_config=one_split)
    model = Importer(source_uri=model_root(version_dir, output_dir),
                     artifact_type=Model).with_id("ModelImporter")
    inferrer = BulkInferrer(
        examples=example_gen.outputs["examples"], model=model.outputs["result"],
        data_spec=bulk_inferrer_pb2.DataSpec(),
        model_spec=bulk_inferrer_pb2.ModelSpec(model_signature_name=["serving_default"]))
    return Pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=os.path.join(output_dir, "pipeline_root"),
        components=[example_gen, model, inferrer],
        metadata_connection_config=sqlite_metadata_connection_config(
            metadata_path(output_dir)),
        enable_cache=False,
        beam_pipeline_args=[f"--direct_running_mode={mode}", "--direct_num_workers=0"],
    )


def metadata_path(output_dir: str) -> str:
    return os.path.join(output_dir, "metadata.db")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--model-dir", required=True, help="a pushed version folder")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--mode", choices=MODES, default="multi_processing")
    args = parser.parse_args(argv)
    from absl import logging
    from tfx.v1.orchestration import LocalDagRunner

    logging.set_verbosity(logging.INFO)
    os.makedirs(args.output_dir, exist_ok=True)
    LocalDagRunner().run(create_pipeline(args.data_root, args.model_dir, args.output_dir,
                                         args.mode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
