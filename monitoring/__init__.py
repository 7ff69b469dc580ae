"""Watch the served model: check logged requests against what it was trained on.

`python -m monitoring.check --requests DIR` reads what `serving.capture`
(client, batch predictions) and the nginx sidecar logged, finds the model
version that answered through ML Metadata's lineage, and checks the requests
for schema anomalies, training-serving skew, drift against the previous
checked window and drift of the served probabilities (docs/monitoring.md).
`monitoring.notify` posts a run's or a check's outcome to a webhook;
`monitoring.span` turns labelled requests into the next span of data.
"""
