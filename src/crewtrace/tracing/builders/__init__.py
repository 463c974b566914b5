"""The span builders, one module per unit: workflow (crew, flow, method), task, agent, llm, tool, and the
other steps; common.py holds what they share."""
