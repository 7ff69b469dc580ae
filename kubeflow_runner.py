"""Compile the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines, optionally submit it.

    python kubeflow_runner.py --pipeline-root gs://BUCKET/root --image REGISTRY/IMAGE:TAG
    python kubeflow_runner.py ... --submit --host https://KFP_HOST   # Kubeflow Pipelines
    python kubeflow_runner.py ... --vertex --project P --region R     # Vertex AI Pipelines

The same `create_pipeline(...)` as the local run is compiled by TFX's
KubeflowV2DagRunner into a YAML PipelineSpec (build/chicago-taxi.yaml by
default). Every component runs in the pipeline image built by `Dockerfile`,
which must therefore contain the code the spec names by dotted path
(`models.*`, `pipeline.*`, and `artifact_types` for the custom artifact
types; this module still resolves the titles of specs compiled before it).
Every option can also come from an environment variable; `--help` lists both.
The work is done in pipeline/kubeflow.py (settings, compiling) and
pipeline/kubeflow_submit.py (submitting).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from metadata.errors import first_line
from pipeline import kubeflow
from pipeline.kubeflow import DeployError, build_parser
from pipeline.kubeflow_submit import (
    check_google_credentials,
    check_kfp_endpoint,
    submit_to_kfp,
    submit_to_vertex,
)


def __getattr__(name: str) -> type:
    """`kubeflow_runner.<Class>`: the artifact titles of specs compiled before `artifact_types`.

    Deprecated: specs compiled now name `artifact_types.<Class>`; this keeps
    older specs running in a new image until they are compiled again.
    """
    import artifact_types

    if name not in artifact_types.__all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"{__name__}.{name} is the title of a spec compiled before "
                  f"artifact_types; compile it again to name artifact_types.{name}",
                  DeprecationWarning, stacklevel=2)
    return getattr(artifact_types, name)


def deploy(args: argparse.Namespace) -> None:
    """Validate, check the target, compile, then submit: cheap failures come first."""
    kubeflow.validate(args)
    if args.submit:
        check_kfp_endpoint(args.host, args.token)
    if args.vertex:
        check_google_credentials()
    config = kubeflow.config_from_args(args)
    package = os.path.join(args.output_dir, f"{config.pipeline_name}.yaml")
    kubeflow.compile_pipeline(config, args.image, package)
    print(f"Compiled {package} (image {args.image}, pipeline root {config.pipeline_root})")
    if args.submit:
        print(f"Submitted to Kubeflow Pipelines: {submit_to_kfp(package, config, args)}")
    if args.vertex:
        print(f"Submitted to Vertex AI Pipelines: {submit_to_vertex(package, config, args)}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        deploy(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - the CLI turns any failure into one line
        print(f"error: {first_line(error, with_type=True)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
