"""transitcast serving.reports."""
