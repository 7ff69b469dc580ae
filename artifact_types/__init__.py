"""The pipeline's own artifact types: the one module compiled Kubeflow specs name.

Kubeflow V2 records an artifact type TFX does not define under a schema title
"<module>.<Class>" (TFX's rule: one dot, so a top-level module), and each
component's container imports the class by that title. A compiled spec outlives
the code that compiled it, so the module it names is this one, kept for that
purpose alone: moving a component or renaming a command-line script does not
break a spec compiled before. Every custom artifact type of the pipeline is
defined here (compiling a pipeline with one defined elsewhere fails and says
so: `pipeline.kubeflow.kfp_artifact_titles`). Local runs record the types under
their own names (`TYPE_NAME`), as before.
"""

from __future__ import annotations

from tfx import types
from tfx.types import standard_artifacts

__all__ = ["FeatureSelection", "ValidatedStatistics"]


class FeatureSelection(types.Artifact):
    """Which candidate features the model uses, and why (a JSON report written by
    pipeline/components/feature_selection.py)."""

    TYPE_NAME = "FeatureSelection"


class ValidatedStatistics(standard_artifacts.ExampleStatistics):
    """Statistics of data that passed the gate (pipeline/components/gate.py): the baseline
    for drift checks."""

    TYPE_NAME = "ValidatedStatistics"
