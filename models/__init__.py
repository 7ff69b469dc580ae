"""Model code referenced by the pipeline's components through dotted paths."""
