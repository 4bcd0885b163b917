"""transitcast pipelines.flows.ingest."""
