"""What crewtrace instruments, for BaseInstrumentor's dependency check and the ``instruments`` extra."""

_instruments = ("crewai >= 1.15, < 2",)
