"""A stdio MCP server with one tool, for the MCP tests. ``--fail`` makes the tool raise."""

from __future__ import annotations

import sys

from mcp.server.fastmcp import FastMCP

server = FastMCP("capitals")
FAIL = "--fail" in sys.argv


@server.tool()
def lookup_capital(country: str) -> str:
    """Return the capital city of a country."""
    if FAIL:
        raise ValueError(f"lookup_capital failed on purpose for {country!r}")
    return "Paris"


if __name__ == "__main__":
    server.run()
