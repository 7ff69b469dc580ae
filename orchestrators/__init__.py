"""Orchestrators that run the pipeline one TFX node per task: Luigi, Azure ML (and the node runner they share)."""
