"""Setup and export: ``instrument()``, its settings, the exporters and span delivery."""
