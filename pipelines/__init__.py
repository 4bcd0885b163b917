"""transitcast pipelines package."""
