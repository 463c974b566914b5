"""What crewtrace instruments, for BaseInstrumentor's dependency check and the ``instruments`` extra."""

_instruments = ("crewai >= 1.10.1, < 2",)  # crewai_releases.SUPPORTED; tested by scripts/test-releases
