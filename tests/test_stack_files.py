"""The stack's files agree: collector-config.yaml, the tier configs, jaeger-config.yaml, the Builder manifest,
scripts/build-stack and docker-compose.yml, with each other and with crewtrace's defaults.

Docker cannot run here (no engine), so docker-compose.yml is checked, not started: its images are the
releases the tests build from source, its config files the ones the tests run, its ports those the configs
listen on. That the Collector accepts the configs, and what they do, is tested against the real processes
(tests/test_stack_e2e.py and the other tests/test_stack_*.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from crewtrace import attributes
from crewtrace.setup.settings import DEFAULT_ENDPOINTS

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "collector-config.yaml").read_text())
GATEWAY = yaml.safe_load((ROOT / "collector-tier" / "gateway.yaml").read_text())
SAMPLER = yaml.safe_load((ROOT / "collector-tier" / "sampler.yaml").read_text())
JAEGER = yaml.safe_load((ROOT / "jaeger-config.yaml").read_text())
MANIFEST = yaml.safe_load((ROOT / "collector-builder.yaml").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
BUILD_SCRIPT = (ROOT / "scripts" / "build-stack").read_text()
SECTIONS = ("receivers", "processors", "exporters", "connectors")
_PLACEHOLDER = re.compile(r"\$\{env:(\w+)(?::-([^}]*))?\}")

# Each manifest module and the component type it provides (the name used in a config).
MODULE_TYPES = {
    "otlpreceiver": "otlp",
    "memorylimiterprocessor": "memory_limiter",
    "batchprocessor": "batch",
    "redactionprocessor": "redaction",
    "tailsamplingprocessor": "tail_sampling",
    "otlpexporter": "otlp_grpc",
    "debugexporter": "debug",
    "fileexporter": "file",
    "prometheusexporter": "prometheus",
    "loadbalancingexporter": "load_balancing",
    "forwardconnector": "forward",
    "spanmetricsconnector": "span_metrics",
    "healthcheckextension": "health_check",
    "filestorage": "file_storage",
}


def default(value: Any) -> Any:
    """A config value with each ``${env:NAME:-default}`` placeholder replaced by its default."""
    return _PLACEHOLDER.sub(lambda m: m.group(2) or "", value) if isinstance(value, str) else value


def _port(endpoint: str) -> int:
    return int(default(endpoint).rsplit(":", 1)[1])


def _used(config: dict[str, Any]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {section: set() for section in SECTIONS}
    for pipeline in config["service"]["pipelines"].values():
        for section in ("receivers", "processors", "exporters"):
            for name in pipeline.get(section, []):
                used["connectors" if name in (config.get("connectors") or {}) else section].add(name)
    return used


COLLECTOR_CONFIGS = {"collector-config": CONFIG, "gateway": GATEWAY, "sampler": SAMPLER}


@pytest.mark.parametrize("config", COLLECTOR_CONFIGS.values(), ids=COLLECTOR_CONFIGS.keys())
def test_every_component_in_a_pipeline_is_defined_and_every_defined_one_is_used(config):
    used = _used(config)
    for section in SECTIONS:
        defined = set(config.get(section) or {})
        assert used[section] == defined, section
    assert set(config["service"]["extensions"]) == set(config["extensions"])


def test_connectors_are_exporter_in_one_pipeline_and_receiver_in_another():
    for config in COLLECTOR_CONFIGS.values():
        pipelines = config["service"]["pipelines"].values()
        for connector in config.get("connectors") or {}:
            assert any(connector in p.get("exporters", []) for p in pipelines), connector
            assert any(connector in p.get("receivers", []) for p in pipelines), connector


def test_the_manifest_builds_exactly_the_components_the_configs_use():
    used = set()
    for config in COLLECTOR_CONFIGS.values():
        for section in (*SECTIONS, "extensions"):
            used |= {name.split("/")[0] for name in config.get(section) or {}}
    built = {}
    for section in (*SECTIONS, "extensions"):
        for entry in MANIFEST[section]:
            module, version = entry["gomod"].split()
            built[MODULE_TYPES[module.rsplit("/", 1)[1]]] = version
    assert set(built) == used


def test_the_manifest_is_one_collector_release():
    release = MANIFEST["dist"]["version"]
    minor = int(release.split(".")[1])
    for section in (*SECTIONS, "extensions"):
        assert {e["gomod"].split()[1] for e in MANIFEST[section]} == {f"v{release}"}, section
    # Core's stable modules (the confmap providers) are numbered v1.(N-94).0 beside v0.N.0.
    assert {e["gomod"].split()[1] for e in MANIFEST["providers"]} == {f"v1.{minor - 94}.0"}
    assert re.search(r'^JAEGER_RELEASE="[0-9.]+"$', BUILD_SCRIPT, re.M)


def test_compose_runs_the_releases_and_files_the_tests_build_and_run():
    services = COMPOSE["services"]
    assert services["otel-collector"]["image"] == f"otel/opentelemetry-collector-contrib:{MANIFEST['dist']['version']}"
    jaeger_release = re.search(r'^JAEGER_RELEASE="([0-9.]+)"$', BUILD_SCRIPT, re.M).group(1)
    assert services["jaeger"]["image"] == f"jaegertracing/jaeger:{jaeger_release}"
    assert "./collector-config.yaml:/etc/otelcol-contrib/config.yaml:ro" in services["otel-collector"]["volumes"]
    assert "./jaeger-config.yaml:/etc/jaeger/config.yaml:ro" in services["jaeger"]["volumes"]
    assert services["jaeger"]["command"] == ["--config=/etc/jaeger/config.yaml"]
    published = {int(p.split(":")[0]) for p in services["jaeger"]["ports"]}
    assert published == {_port(JAEGER["extensions"]["jaeger_query"]["http"]["endpoint"])}


def test_compose_and_run_stack_run_the_collector_alike():
    run_stack = (ROOT / "scripts" / "run-stack").read_text()
    environment = COMPOSE["services"]["otel-collector"]["environment"]
    for name, value in environment.items():
        assert f'{name}="${{{name}:-{value}}}"' in run_stack, name
    assert set(environment) == {"OTELCOL_SAMPLING_PERCENTAGE", "OTELCOL_DECISION_WAIT"}


def test_the_collector_volume_is_given_to_the_collectors_user_before_it_starts():
    owner = COMPOSE["services"]["collector-data-owner"]
    assert "chown -R 10001:10001 /var/lib/otelcol" in owner["command"][-1]  # the contrib image's USER
    assert owner["volumes"] == ["collector-data:/var/lib/otelcol"]
    depends = COMPOSE["services"]["otel-collector"]["depends_on"]
    assert depends["collector-data-owner"] == {"condition": "service_completed_successfully"}


def test_current_component_names():
    exporters = {name.split("/")[0] for name in CONFIG["exporters"]}
    assert not exporters & {"logging", "jaeger", "otlp", "otlphttp"}  # removed, or deprecated since 0.144
    assert {"debug", "otlp_grpc"} <= exporters


def test_otlp_ports_agree_with_crewtrace_and_compose():
    protocols = CONFIG["receivers"]["otlp"]["protocols"]
    ports = {"grpc": _port(protocols["grpc"]["endpoint"]), "http/protobuf": _port(protocols["http"]["endpoint"])}
    gateway = GATEWAY["receivers"]["otlp"]["protocols"]  # the tier's front door is where one Collector was
    assert [_port(gateway[p]["endpoint"]) for p in ("grpc", "http")] == list(ports.values())
    assert ports == {p: urlparse(url).port for p, url in DEFAULT_ENDPOINTS.items()}
    published = {int(p.split(":")[0]) for p in COMPOSE["services"]["otel-collector"]["ports"]}
    assert set(ports.values()) <= published
    assert _port(CONFIG["extensions"]["health_check"]["endpoint"]) in published
    assert _port(CONFIG["exporters"]["prometheus"]["endpoint"]) in published


def test_jaeger_exporter_reaches_the_compose_jaeger_service():
    exporter = CONFIG["exporters"]["otlp_grpc/jaeger"]
    host, port = default(exporter["endpoint"]).rsplit(":", 1)
    assert host in COMPOSE["services"]
    assert int(port) == _port(JAEGER["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"])
    assert "16686:16686" in COMPOSE["services"]["jaeger"]["ports"]
    assert exporter["sending_queue"]["storage"] in CONFIG["extensions"]
    assert exporter["retry_on_failure"]["enabled"] is True


def test_the_persistent_queue_and_file_exporter_live_on_a_volume():
    mounts = COMPOSE["services"]["otel-collector"]["volumes"]
    volume_targets = [m.split(":")[1] for m in mounts if not m.startswith(".")]
    for path in (CONFIG["extensions"]["file_storage/queue"]["directory"], CONFIG["exporters"]["file"]["path"]):
        assert any(default(path).startswith(target) for target in volume_targets), path
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


def test_the_demo_service_sends_to_the_collector():
    demo = COMPOSE["services"]["demo"]
    endpoint = urlparse(demo["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert endpoint.hostname == "otel-collector" and endpoint.port == urlparse(DEFAULT_ENDPOINTS["grpc"]).port
    assert demo["environment"]["CREWAI_DISABLE_TELEMETRY"] == "true"


_REDACTION = [re.compile(pattern) for pattern in CONFIG["processors"]["redaction"]["blocked_values"]]
_NUMERIC_OR_NAME = [
    value for value in vars(attributes).values() if isinstance(value, str) and ("usage" in value or "cost" in value)
]


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a" * 36,
        "github_pat_11ABCDEFG0123456789_abcdefghij",
        "xoxb-1234567890-abcdefghij",
        "AIzaSyA-1234567890abcdefghijklmnopqrstu",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "postgres://admin:hunter2@db.internal:5432/app",
    ],
)
def test_redaction_masks_common_secrets(secret):
    assert any(p.search(secret) for p in _REDACTION), secret


def test_redaction_masks_the_whole_of_a_url_password_holding_an_at_sign():
    url = "postgres://admin:p@ss@w0rd@db.internal:5432/app"
    masked = url
    for pattern in _REDACTION:
        masked = pattern.sub("****", masked)
    assert "w0rd" not in masked and "ss@" not in masked and "db.internal:5432/app" in masked, masked


@pytest.mark.parametrize("value", [*_NUMERIC_OR_NAME, "1333", "0.000405", "gpt-4o-mini", "https://api.openai.com/v1"])
def test_redaction_leaves_token_and_cost_names_and_values_alone(value):
    assert not any(p.search(value) for p in _REDACTION), value


def test_the_tier_applies_the_same_redaction_and_sampling_policies():
    assert GATEWAY["processors"]["redaction"] == CONFIG["processors"]["redaction"]
    assert SAMPLER["processors"]["tail_sampling"] == CONFIG["processors"]["tail_sampling"]
    assert GATEWAY["connectors"]["span_metrics"] == CONFIG["connectors"]["span_metrics"]
    assert GATEWAY["exporters"]["load_balancing"]["routing_key"] == "traceID"


def test_the_redaction_keeps_every_key():
    redaction = CONFIG["processors"]["redaction"]
    assert redaction["allow_all_keys"] is True and not redaction.get("blocked_keys")
    traces = CONFIG["service"]["pipelines"]["traces"]["processors"]
    assert traces.index("memory_limiter") < traces.index("redaction")  # everything exported downstream is masked
