"""Offline stand-ins for what memory, knowledge and MCP need: an embedder and a stdio MCP server."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
from chromadb.api.types import Documents
from chromadb.api.types import EmbeddingFunction as ChromaEmbeddingFunction
from crewai.rag.embeddings.providers.custom.embedding_callable import CustomEmbeddingFunction

MCP_SERVER = Path(__file__).parent / "apps" / "mcp_server.py"


class HashEmbedding(CustomEmbeddingFunction, ChromaEmbeddingFunction[Documents]):
    """A deterministic bag-of-words embedder (64 hashed dimensions, unit length).

    It subclasses both base classes because CrewAI validates an embedder config against chromadb's
    protocol and its own custom provider against CrewAI's.
    """

    DIM = 64

    def __init__(self, **_: Any) -> None:
        pass

    def __call__(self, input: Documents) -> list[np.ndarray]:
        vectors = []
        for text in input:
            vector = np.zeros(self.DIM, dtype=np.float32)
            for word in str(text).lower().split():
                vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.DIM] += 1.0
            vector[0] += 1e-3
            vectors.append(vector / np.linalg.norm(vector))
        return vectors

    @staticmethod
    def name() -> str:
        return "crewtrace_hash"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> HashEmbedding:
        return HashEmbedding()

    def is_legacy(self) -> bool:
        return False


EMBEDDER = {"provider": "custom", "config": {"embedding_callable": HashEmbedding}}


def mcp_server_command(fail: bool = False) -> tuple[str, list[str]]:
    """(command, args) that start the test MCP server over stdio with this interpreter."""
    return sys.executable, [str(MCP_SERVER), *(["--fail"] if fail else [])]
