"""transitcast models package."""
