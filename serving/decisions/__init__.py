"""transitcast serving.decisions."""
