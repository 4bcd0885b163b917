"""transitcast serving.online."""
