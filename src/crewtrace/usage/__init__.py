"""Token usage in one shape, and what it costs."""
