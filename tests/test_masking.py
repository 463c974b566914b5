"""Every credential pattern masks its example and leaves prose alone; names, labels, session ids, tags and
metadata keys are masked as captured text is, with capture on and off; the report masks what it reads (#25
item 7)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from crewai import Agent, Crew, Task
from crewai.tools import BaseTool

import crewtrace
from crewtrace import attributes
from crewtrace.cli import main
from crewtrace.masking import REDACTED, SECRET_PATTERNS, mask_secrets
from crewtrace.offline_llm import OfflineLLM
from tests.helpers import record_one_task_run, rewrite_spans, set_attribute

ROOT = Path(__file__).resolve().parents[1]

# For each row of SECRET_PATTERNS: a text holding an example, the secret part, and what must stay.
EXAMPLES = {
    "OpenAI and Anthropic API keys": ("key sk-proj-abcdEFGH1234ijklMNOP5678qrst here", "abcdEFGH1234", "key "),
    "AWS access key ids": ("id AKIAIOSFODNN7EXAMPLE ok", "IOSFODNN7EXAMPLE", "id "),
    "AWS secret access keys (after their name)": (
        '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
        "wJalrXUtnFEMI",
        '{"SecretAccessKey": "',
    ),
    "GitHub tokens": ("token ghp_" + "a1B2" * 9 + " used", "a1B2a1B2", "token "),
    "GitHub fine-grained tokens": ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstu", "11ABCDEFG", "pat "),
    "Slack tokens": ("slack xoxb-1234567890-abcdefghijKLMN", "1234567890-abcdefghij", "slack "),
    "Slack webhook URLs": (
        "post to https://hooks.slack.com/services/T0001/B0002/XXXXyyyyZZZZ now",
        "T0001/B0002/XXXXyyyyZZZZ",
        "https://hooks.slack.com/services/",
    ),
    "Google API keys": ("maps AIzaSyA-1234567890abcdefghijklmnopqrstu end", "SyA-1234567890", "maps "),
    "bearer tokens": ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234", "Authorization: Bearer "),
    "Basic credentials": ("Authorization: Basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy", "Authorization: Basic "),
    'JSON fields named like secrets ("password": "…", "api_key", "access_token", …)': (
        '{"user": "ann", "password": "hunter2 \\" x", "api_key": "k-123"}',
        "hunter2",
        '{"user": "ann", "password": "',
    ),
    "passwords in URLs (user:password@host)": (
        "db postgres://admin:p@ss@w0rd@db.example:5432/app",
        "ss@w0rd",
        "postgres://admin:",
    ),
}

PROSE = [
    "basic arithmetic helps; the Basic idea is simple",
    "the task used 2 tokens; ask-me-anything; risk-free",
    "write to me@example.com or visit https://example.com/a@b",
    '{"passwords_checked": 3, "token_count": 12, "secretary": "Ann"}',
    "Thought: I now know the final answer. gh is a CLI; AKIA is short.",
]


def test_every_pattern_has_an_example():
    assert {row.what for row in SECRET_PATTERNS} == set(EXAMPLES)


@pytest.mark.parametrize(("text", "secret", "kept"), EXAMPLES.values(), ids=EXAMPLES.keys())
def test_each_pattern_masks_its_example(text, secret, kept):
    masked = mask_secrets(text)
    assert secret not in masked and REDACTED in masked and kept in masked, masked


@pytest.mark.parametrize("text", PROSE)
def test_prose_is_left_alone(text):
    assert mask_secrets(text) == text


def test_the_readme_lists_every_pattern():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| credential | example (masked) |", 1)[1].split("\n\n", 1)[0]
    for row in SECRET_PATTERNS:
        assert f"| {row.what} |" in table, row.what


SECRET = "sk-proj-SECRETabcdEFGH1234ijklMNOP"
SLACK = "xoxb-0000000000-SECRETslack"


class KeyedTool(BaseTool):
    name: str = f"lookup {SECRET}"
    description: str = "Looks a topic up."

    def _run(self, topic: str) -> str:
        return "found"


def _keyed_crew() -> Crew:
    agent = Agent(role=f"Worker {SECRET}", goal="g", backstory="b", llm=OfflineLLM(), tools=[KeyedTool()])
    task = Task(name=f"job {SLACK}", description="Look it up.", expected_output="x", agent=agent)
    return Crew(name=f"crew {SECRET}", agents=[agent], tasks=[task])


def _everything(spans) -> str:
    """Every name, attribute key and value, and event of the spans, as one text."""
    parts = []
    for span in spans:
        parts.append(span.name)
        parts += [f"{k}={v}" for k, v in span.attributes.items()]
        for event in span.events:
            parts.append(event.name)
            parts += [f"{k}={v}" for k, v in event.attributes.items()]
    return "\n".join(parts)


@pytest.mark.parametrize("capture", [True, False], ids=["capture on", "capture off"])
def test_names_labels_and_metadata_keys_are_masked(memory_provider, capture):
    provider, exporter = memory_provider
    crewtrace.instrument(tracer_provider=provider, exporter="none", capture_content=capture)
    with crewtrace.context(
        session_id=f"s-{SECRET}", user_id=f"u-{SLACK}", tags=[f"t-{SECRET}"], metadata={f"m-{SLACK}": "v"}
    ):
        result = _keyed_crew().kickoff()
    assert result.raw
    spans = exporter.get_finished_spans()
    text = _everything(spans)
    assert "SECRET" not in text, [line for line in text.splitlines() if "SECRET" in line]
    (root,) = [s for s in spans if s.parent is None]
    assert root.name == f"invoke_workflow crew {REDACTED}"
    assert root.attributes[attributes.SESSION_ID] == f"s-{REDACTED}"
    assert list(root.attributes[attributes.RUN_TAGS]) == [f"t-{REDACTED}"]
    assert {s.name for s in spans} >= {f"execute_task job {REDACTED}", f"invoke_agent Worker {REDACTED}"}
    if capture:
        assert root.attributes[attributes.RUN_METADATA_PREFIX + f"m-{REDACTED}"] == "v"


def test_with_masking_off_names_keep_their_text(memory_provider):
    """The same run with mask_secrets=False: the test above can fail."""
    provider, exporter = memory_provider
    crewtrace.instrument(tracer_provider=provider, exporter="none", mask_secrets=False)
    _keyed_crew().kickoff()
    assert SECRET in _everything(exporter.get_finished_spans())


def test_summary_and_report_mask_what_they_read(tmp_path, capsys):
    """A trace written by another tool (or with masking off) shows no secret in a summary or a page either."""
    recorded = record_one_task_run(tmp_path / "clean.jsonl", "masked")

    def edit(span):
        span["name"] += f" {SECRET}"
        set_attribute(span, attributes.GEN_AI_WORKFLOW_NAME, {"stringValue": SLACK})

    path = rewrite_spans(recorded, tmp_path / "leaky.jsonl", edit)
    assert SECRET in path.read_text() and SLACK in path.read_text()
    for argv in (["summary", str(path)], ["summary", str(path), "--json"], ["runs", str(path)]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "SECRET" not in out and REDACTED in out, out
    assert main(["report", str(path), "--out", str(tmp_path / "site")]) == 0
    pages = [p.read_text() for p in (tmp_path / "site").rglob("*.html")]
    assert pages and not any(re.search("SECRET", page) for page in pages)
