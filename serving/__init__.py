"""transitcast serving package."""
