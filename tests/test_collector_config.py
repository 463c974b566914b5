"""collector-config.yaml and docker-compose.yml: complete, consistent with each other and with crewtrace.

These check structure and agreement only; they cannot prove the Collector release accepts the file (there
is no Docker engine or Collector binary where the tests run).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from crewtrace import attributes as A
from crewtrace.settings import DEFAULT_ENDPOINTS

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "collector-config.yaml").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SECTIONS = ("receivers", "processors", "exporters", "connectors")


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _used() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {section: set() for section in SECTIONS}
    for pipeline in CONFIG["service"]["pipelines"].values():
        for section in ("receivers", "processors", "exporters"):
            for name in pipeline.get(section, []):
                used["connectors" if name in (CONFIG.get("connectors") or {}) else section].add(name)
    return used


def test_every_component_in_a_pipeline_is_defined_and_every_defined_one_is_used():
    used = _used()
    for section in SECTIONS:
        defined = set(CONFIG.get(section) or {})
        assert used[section] == defined, section
    assert set(CONFIG["service"]["extensions"]) == set(CONFIG["extensions"])


def test_connectors_are_exporter_in_one_pipeline_and_receiver_in_another():
    pipelines = CONFIG["service"]["pipelines"].values()
    for connector in CONFIG["connectors"]:
        assert any(connector in p.get("exporters", []) for p in pipelines), connector
        assert any(connector in p.get("receivers", []) for p in pipelines), connector


def test_current_component_names():
    exporters = {name.split("/")[0] for name in CONFIG["exporters"]}
    assert not exporters & {"logging", "jaeger", "otlp", "otlphttp"}  # removed, or deprecated since 0.144
    assert {"debug", "otlp_grpc"} <= exporters


def test_otlp_ports_agree_with_crewtrace_and_compose():
    protocols = CONFIG["receivers"]["otlp"]["protocols"]
    ports = {"grpc": _port(protocols["grpc"]["endpoint"]), "http/protobuf": _port(protocols["http"]["endpoint"])}
    assert ports == {p: urlparse(url).port for p, url in DEFAULT_ENDPOINTS.items()}
    published = {int(p.split(":")[0]) for p in COMPOSE["services"]["otel-collector"]["ports"]}
    assert set(ports.values()) <= published
    assert _port(CONFIG["extensions"]["health_check"]["endpoint"]) in published
    assert _port(CONFIG["exporters"]["prometheus"]["endpoint"]) in published


def test_jaeger_exporter_reaches_the_compose_jaeger_service():
    exporter = CONFIG["exporters"]["otlp_grpc/jaeger"]
    host, port = exporter["endpoint"].rsplit(":", 1)
    assert host in COMPOSE["services"] and port == "4317"  # Jaeger v2 takes OTLP gRPC on 4317
    assert "16686:16686" in COMPOSE["services"]["jaeger"]["ports"]
    assert exporter["sending_queue"]["storage"] in CONFIG["extensions"]
    assert exporter["retry_on_failure"]["enabled"] is True


def test_the_persistent_queue_and_file_exporter_live_on_a_volume():
    mounts = COMPOSE["services"]["otel-collector"]["volumes"]
    volume_targets = [m.split(":")[1] for m in mounts if not m.startswith(".")]
    for path in (CONFIG["extensions"]["file_storage/queue"]["directory"], CONFIG["exporters"]["file"]["path"]):
        assert any(path.startswith(target) for target in volume_targets), path
    assert {m.split(":")[0] for m in mounts if not m.startswith(".")} <= set(COMPOSE["volumes"])
    config_mount = next(m for m in mounts if m.startswith("./collector-config.yaml:"))
    assert config_mount.split(":")[1] in COMPOSE["services"]["otel-collector"]["command"][0]


def test_prometheus_scrapes_the_collectors_metrics_port():
    scrape = yaml.safe_load(COMPOSE["configs"]["prometheus-config"]["content"])
    targets = [t for job in scrape["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert f"otel-collector:{_port(CONFIG['exporters']['prometheus']['endpoint'])}" in targets


def test_images_are_pinned_and_dependencies_exist():
    for name, service in COMPOSE["services"].items():
        image = service["image"]
        assert re.search(r":\d[\w.-]*$|:v\d[\w.-]*$|:\d+\.\d+-slim$", image) and not image.endswith(":latest"), name
        for dependency in service.get("depends_on", []):
            assert dependency in COMPOSE["services"], (name, dependency)
    assert COMPOSE["services"]["otel-collector"]["image"].endswith(":0.159.0")


def test_the_demo_service_sends_to_the_collector():
    demo = COMPOSE["services"]["demo"]
    endpoint = urlparse(demo["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.hostname == "otel-collector" and endpoint.port == urlparse(DEFAULT_ENDPOINTS["grpc"]).port
    assert demo["environment"]["CREWAI_DISABLE_TELEMETRY"] == "true"


_REDACTION = [re.compile(pattern) for pattern in CONFIG["processors"]["redaction"]["blocked_values"]]
_NUMERIC_OR_NAME = [
    value for value in vars(A).values() if isinstance(value, str) and ("usage" in value or "cost" in value)
]


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a" * 36,
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "postgres://admin:hunter2@db.internal:5432/app",
    ],
)
def test_redaction_masks_common_secrets(secret):
    assert any(p.search(secret) for p in _REDACTION), secret


@pytest.mark.parametrize("value", [*_NUMERIC_OR_NAME, "1333", "0.000405", "gpt-4o-mini", "https://api.openai.com/v1"])
def test_redaction_leaves_token_and_cost_names_and_values_alone(value):
    assert not any(p.search(value) for p in _REDACTION), value


def test_the_redaction_keeps_every_key():
    redaction = CONFIG["processors"]["redaction"]
    assert redaction["allow_all_keys"] is True and not redaction.get("blocked_keys")
    traces = CONFIG["service"]["pipelines"]["traces"]["processors"]
    assert traces.index("memory_limiter") < traces.index("redaction")  # everything exported downstream is masked
