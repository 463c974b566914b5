"""Reporting: spans read back as records, one run's summary, and its rendering."""
