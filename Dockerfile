# The pipeline image: every Kubeflow / Vertex AI component runs in it.
#
# TFX's own image for the TFX version the lock file pins: it carries TFX, Beam
# (its ENTRYPOINT is Beam's worker boot, so this image also works as a Dataflow
# SDK container) and the TFX stack. Kubeflow sets each component's command
# itself, so the entrypoint stays as the base image defines it.
FROM gcr.io/tfx-oss-public/tfx:1.16.0

WORKDIR /pipeline

# Exactly the versions the tests ran with. --no-deps: every transitive package
# is pinned in the lock file, so pip resolves nothing.
COPY requirements.lock ./
RUN python -m pip install --no-cache-dir --no-deps -r requirements.lock

# What the compiled spec names: models.* (preprocessing_fn, run_fn),
# pipeline.components.* (custom components), artifact_types (custom artifact
# types), kubeflow_runner (the CLI that compiled it; it resolves the artifact
# titles of specs compiled before artifact_types), serving (the Pusher's serving
# check), metadata (the record names components share with readers), options
# (the options the modules with a command line declare) and the curated schema
# (ImportSchemaGen).
COPY schema/ schema/
COPY models/ models/
COPY artifact_types/ artifact_types/
COPY pipeline/ pipeline/
COPY metadata/ metadata/
COPY options/ options/
COPY serving/ serving/
COPY kubeflow_runner.py ./
# The node runner every one-task-per-node orchestrator (Azure ML) runs in this image,
# with the local run's failure text and quiet log (local) and, after a refusal, the
# report (review).
COPY orchestrators/ orchestrators/
COPY local/ local/
COPY review/ review/

# Importable from any working directory, by Kubeflow's launcher and by Beam workers.
ENV PYTHONPATH="/pipeline${PYTHONPATH:+:${PYTHONPATH}}"
