"""transitcast features.contract."""
