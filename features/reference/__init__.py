"""transitcast features.reference."""
