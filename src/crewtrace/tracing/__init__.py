"""The tracing core: CrewAI's events in, the span tree out (event hook, event table, tracker, span builders)."""
