"""crewtrace's benchmark harness (not part of the package): ``./scripts/bench``."""
