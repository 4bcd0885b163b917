"""transitcast features package."""
