"""transitcast pipelines.adapters."""
