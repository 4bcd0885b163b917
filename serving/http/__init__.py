"""transitcast serving.http."""
