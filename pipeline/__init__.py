"""Pipeline definition (`create_pipeline`), its configuration and its custom steps."""
