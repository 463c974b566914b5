"""The settings of ``crewtrace.instrument()``: one table, one reader, one error.

Each row of ``SETTINGS`` is one keyword argument: the environment variables read when it is not given (the
first one set wins; the SDK's own constants where they exist), what it accepts, its default, and the check
that turns a value from either source into what crewtrace uses. ``resolve()`` is the only place that reads
them, so a bad value, from an argument or a variable, is one line at setup: a :class:`SettingError` naming
the setting, where the value came from, and what is accepted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from opentelemetry import environment_variables as api_env
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk import environment_variables as sdk_env
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.sampling import Sampler

from crewtrace.errors import SettingError
from crewtrace.masking import shorten
from crewtrace.setup.delivery import DEFAULT_SHUTDOWN_TIMEOUT
from crewtrace.setup.exporters import DEFAULT_ENDPOINTS
from crewtrace.setup.request_size import DEFAULT_MAX_REQUEST_SIZE
from crewtrace.tracing.content import (
    CAPTURE_ACCEPTED,
    CAPTURE_ENV,
    OTEL_CAPTURE_ENV,
    capture_switch,
    compile_patterns,
)
from crewtrace.usage.pricing import PRICES_ENV, PriceTable

DEFAULT_FILE_PATH = "crewtrace-traces.jsonl"
FILE_PATH_ENV = "CREWTRACE_FILE_PATH"
SHUTDOWN_TIMEOUT_ENV = "CREWTRACE_SHUTDOWN_TIMEOUT"
MAX_REQUEST_SIZE_ENV = "CREWTRACE_MAX_REQUEST_SIZE"
CREWAI_TELEMETRY_ENV = "CREWAI_DISABLE_TELEMETRY"
PROTOCOLS = ("grpc", "http/protobuf")
EXPORTERS = ("otlp", "console", "file", "none")
METRICS_EXPORTERS = ("otlp", "console", "none")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110's token
HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")  # one line of printable ASCII (gRPC metadata allows no more)
HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}$")

SAMPLERS: dict[str, Callable[[float], Sampler]] = {
    "always_on": lambda _: sampling.ALWAYS_ON,
    "always_off": lambda _: sampling.ALWAYS_OFF,
    "traceidratio": sampling.TraceIdRatioBased,
    "parentbased_always_on": lambda _: sampling.ParentBased(sampling.ALWAYS_ON),
    "parentbased_always_off": lambda _: sampling.ParentBased(sampling.ALWAYS_OFF),
    "parentbased_traceidratio": lambda ratio: sampling.ParentBased(sampling.TraceIdRatioBased(ratio)),
}
RATIO_SAMPLERS = ("traceidratio", "parentbased_traceidratio")


class _BadValueError(Exception):
    """Raised by a check: the value is not accepted (with an optional reason)."""


# --- checks: each takes an argument's value (or what an environment string became) ------------------------------


def _exporters(value: Any) -> list[str]:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
        raise _BadValueError
    chosen = [n.strip().lower() for n in names if n.strip()]
    if not chosen:
        raise _BadValueError("none named; 'none' sends nowhere")
    if any(n not in EXPORTERS for n in chosen):
        raise _BadValueError
    return [n for n in chosen if n != "none"]


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in options:
            raise _BadValueError
        return value.strip().lower()

    return check


def _endpoint(value: Any) -> str:
    """An http(s) URL with a host, or host:port (gRPC only; checked against the protocol in resolve())."""
    if not isinstance(value, str):
        raise _BadValueError
    if "://" not in value:
        if HOST_PORT.match(value):
            return value
        raise _BadValueError("no scheme")
    parsed = urlparse(value)
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _BadValueError("bad port") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise _BadValueError
    return value


def _headers(value: Any) -> dict[str, str]:
    """Headers as a dict or as OTEL_EXPORTER_OTLP_HEADERS writes them ('k1=v1,k2=v2', values URL-encoded or
    not). Checked here, so a bad one fails at setup, not at every export, and its value is never printed."""
    if isinstance(value, str):
        items = [item for item in value.split(",") if item.strip()]
        if any("=" not in item for item in items):
            raise _BadValueError("an item without '='")
        value = {unquote(k).strip(): unquote(v).strip() for k, v in (item.split("=", 1) for item in items)}
    if not isinstance(value, Mapping):
        raise _BadValueError
    headers = {}
    for key, item in value.items():
        if not isinstance(key, str) or not HEADER_NAME.fullmatch(key):
            raise _BadValueError("a header name that is not a token (letters, digits, !#$%&'*+-.^_`|~)")
        if not isinstance(item, str) or not HEADER_VALUE.fullmatch(item):
            raise _BadValueError(f"the value of {shorten(key, 40)!r} is not printable ASCII on one line")
        headers[key.lower()] = item
    return headers


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise _BadValueError
    return float(value)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _BadValueError
    return value


def _request_size(value: Any) -> int:
    if _positive_int(value) < 65536:  # below that, one ordinary LLM span would have to be cut
        raise _BadValueError
    return int(value)


def _switch(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _BadValueError
    return value


def _optional_switch(value: Any) -> bool | None:
    return None if value is None else _switch(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _BadValueError
    return value.strip()


def _resource_attributes(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        pairs = [item for item in value.split(",") if item.strip()]
        if any("=" not in item or not item.split("=", 1)[0].strip() for item in pairs):
            raise _BadValueError
        value = {k.strip(): v.strip() for k, v in (item.split("=", 1) for item in pairs)}
    if not isinstance(value, Mapping):
        raise _BadValueError
    if not all(isinstance(k, str) and isinstance(v, (str, bool, int, float)) for k, v in value.items()):
        raise _BadValueError("keys must be strings, values str, bool, int or float")
    return dict(value)


def _file_path(value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise _BadValueError
    return os.path.abspath(os.fspath(value))


def _redact(value: Any) -> tuple[tuple[re.Pattern[str], ...], Callable[[str], str] | None]:
    if callable(value) and not isinstance(value, re.Pattern):
        return (), value
    items = [value] if isinstance(value, (str, re.Pattern)) else value
    if not isinstance(items, Sequence) or not all(isinstance(p, (str, re.Pattern)) for p in items):
        raise _BadValueError
    try:
        return compile_patterns(items), None
    except ValueError as exc:  # names the bad pattern
        raise _BadValueError(str(exc).removeprefix("crewtrace: redact=")) from None


def _prices(value: Any) -> PriceTable:
    if not isinstance(value, (str, os.PathLike, Mapping)):
        raise _BadValueError
    try:
        return PriceTable.load(value if isinstance(value, Mapping) else os.fspath(value))
    except ValueError as exc:
        raise _BadValueError(str(exc)) from None


def _ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise _BadValueError
    return float(value)


def _instance(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is not None and not isinstance(value, kind):
            raise _BadValueError
        return value

    return check


# --- how an environment string becomes a value for the check --------------------------------------------------


def _env_number(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise _BadValueError from None


def _env_int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise _BadValueError from None


def _env_switch(raw: str) -> bool:
    try:
        return capture_switch(raw)
    except ValueError:
        raise _BadValueError from None


@dataclass(frozen=True)
class Setting:
    """One keyword argument of ``instrument()``: where it is read, what it accepts, and its check."""

    name: str
    accepted: str
    check: Callable[[Any], Any]
    env: tuple[str, ...] = ()
    default: Any = None
    from_env: Callable[[str], Any] = str  # an environment string as the value the check expects
    secret: bool = False  # holds credentials: a bad value is never shown


SETTINGS: tuple[Setting, ...] = (
    Setting("exporter", f"one or more of {', '.join(EXPORTERS)} (a list, or comma-separated)", _exporters,
            (api_env.OTEL_TRACES_EXPORTER,), "otlp"),
    Setting("protocol", " or ".join(PROTOCOLS), _choice(PROTOCOLS),
            (sdk_env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, sdk_env.OTEL_EXPORTER_OTLP_PROTOCOL), "grpc"),
    Setting("endpoint", "an http(s) URL such as http://localhost:4317, or host:port for grpc", _endpoint,
            (sdk_env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, sdk_env.OTEL_EXPORTER_OTLP_ENDPOINT)),
    Setting("headers", "'key1=value1,key2=value2' or a dict of str", _headers,
            (sdk_env.OTEL_EXPORTER_OTLP_TRACES_HEADERS, sdk_env.OTEL_EXPORTER_OTLP_HEADERS), secret=True),
    Setting("timeout", "a positive number of seconds", _seconds,
            (sdk_env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, sdk_env.OTEL_EXPORTER_OTLP_TIMEOUT), None, _env_number),
    Setting("service_name", "a non-empty string", _text, (sdk_env.OTEL_SERVICE_NAME,)),
    Setting("resource_attributes", "a dict of str keys to str, bool, int or float, or 'k1=v1,k2=v2'",
            _resource_attributes, (sdk_env.OTEL_RESOURCE_ATTRIBUTES,)),
    Setting("file_path", "a writable file path", _file_path, (FILE_PATH_ENV,), DEFAULT_FILE_PATH),
    Setting("tracer_provider", "an opentelemetry.sdk.trace.TracerProvider", _instance(TracerProvider)),
    Setting("meter_provider", "an opentelemetry.metrics.MeterProvider", _instance(MeterProvider)),
    Setting("metrics_exporter", " or ".join(METRICS_EXPORTERS), _choice(METRICS_EXPORTERS),
            (api_env.OTEL_METRICS_EXPORTER,), "otlp"),
    Setting("capture_content", CAPTURE_ACCEPTED, _switch,
            (CAPTURE_ENV, OTEL_CAPTURE_ENV), True, _env_switch),
    Setting("max_content_length", "a positive integer (characters)", _positive_int, (), 16 * 1024),
    Setting("redact", "a regular expression, a list of them, or a function str -> str", _redact, (), ()),
    Setting("mask_secrets", "True or False", _switch, (), True),
    Setting("prices", "a JSON file path or a dict of model prices", _prices, (PRICES_ENV,)),
    Setting("max_request_size", "a whole number of bytes of at least 65536", _request_size, (MAX_REQUEST_SIZE_ENV,),
            DEFAULT_MAX_REQUEST_SIZE, _env_int),
    Setting("shutdown_timeout", "a positive number of seconds", _seconds, (SHUTDOWN_TIMEOUT_ENV,),
            DEFAULT_SHUTDOWN_TIMEOUT, _env_number),
    Setting("crewai_telemetry", "True, False or None", _optional_switch),
    Setting("sampler", f"one of {', '.join(SAMPLERS)}", _choice(tuple(SAMPLERS)), (sdk_env.OTEL_TRACES_SAMPLER,),
            "parentbased_always_on"),
    Setting("sampler_arg", "a sampling ratio between 0 and 1", _ratio, (sdk_env.OTEL_TRACES_SAMPLER_ARG,),
            None, _env_number),
)  # fmt: skip
BY_NAME = {setting.name: setting for setting in SETTINGS}


def _read(setting: Setting, value: Any) -> tuple[Any, str]:
    """(the checked value, where it came from): the argument, else the first environment variable set."""
    source, raw = setting.name, value
    if raw is None:
        for var in setting.env:
            text = os.environ.get(var, "").strip()
            if text:
                source, raw = var, text
                break
    if raw is None:
        return (None if setting.default is None else setting.check(setting.default)), "default"
    try:
        converted = raw if source == setting.name else setting.from_env(raw)
        return setting.check(converted), source
    except _BadValueError as bad:
        raise SettingError(setting.name, source, raw, setting.accepted, str(bad), setting.secret) from None


def read(name: str, value: Any = None) -> Any:
    """One setting, checked: the argument, else its environment variables, else its default."""
    return _read(BY_NAME[name], value)[0]


def resolve(arguments: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Every setting checked, and where each came from; then the rules between settings."""
    unknown = set(arguments) - set(BY_NAME)
    if unknown:
        raise TypeError(f"crewtrace: unknown settings {sorted(unknown)}")
    values, sources = {}, {}
    for setting in SETTINGS:
        values[setting.name], sources[setting.name] = _read(setting, arguments.get(setting.name))
    _check_together(values, sources)
    check_sdk_variables()
    return values, sources


def _check_together(values: dict[str, Any], sources: dict[str, str]) -> None:
    endpoint, protocol = values["endpoint"], values["protocol"]
    if endpoint and "://" not in endpoint and protocol != "grpc":
        example = f"e.g. {DEFAULT_ENDPOINTS[protocol]}"
        raise SettingError("endpoint", sources["endpoint"], endpoint, "an http(s) URL with http/protobuf", example)
    if sources["file_path"] == "file_path" and "file" not in values["exporter"]:
        raise SettingError("file_path", "file_path", values["file_path"], "a path only with exporter='file'",
                           "add 'file' to exporter")  # fmt: skip
    if "file" in values["exporter"]:
        try:
            # As the exporter does: a 0700 directory and a 0600 file, which hold prompts.
            os.makedirs(os.path.dirname(values["file_path"]) or ".", mode=0o700, exist_ok=True)
            os.close(os.open(values["file_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        except OSError as exc:
            raise SettingError("file_path", sources["file_path"], values["file_path"], "a writable file path",
                               exc.strerror or str(exc)) from None  # fmt: skip
    if sources["sampler_arg"] == "sampler_arg" and values["sampler"] not in RATIO_SAMPLERS:
        raise SettingError("sampler_arg", "sampler_arg", values["sampler_arg"],
                           f"a ratio only with sampler {' or '.join(RATIO_SAMPLERS)}")  # fmt: skip


# Variables the SDK reads itself when crewtrace makes the batch processor and the OTLP exporters: checked here
# first, so a bad one is a SettingError at setup rather than the SDK's exception or logged traceback.
SDK_DEFAULT_MAX_QUEUE_SIZE = 2048  # the specification's defaults, which the SDK uses
SDK_DEFAULT_MAX_EXPORT_BATCH_SIZE = 512
COMPRESSIONS = ("gzip", "deflate", "none")
_WHOLE = "a whole number above 0"
_COMPRESSION_ENV = (
    sdk_env.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION,
    sdk_env.OTEL_EXPORTER_OTLP_METRICS_COMPRESSION,
    sdk_env.OTEL_EXPORTER_OTLP_COMPRESSION,
)


def _env_whole(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise SettingError(variable, variable, raw, _WHOLE)
    return int(raw)


def check_sdk_variables() -> None:
    """The OTEL_BSP_* and OTEL_EXPORTER_OTLP_*COMPRESSION variables, as the SDK will read them."""
    _env_whole(sdk_env.OTEL_BSP_SCHEDULE_DELAY, 1)
    queue = _env_whole(sdk_env.OTEL_BSP_MAX_QUEUE_SIZE, SDK_DEFAULT_MAX_QUEUE_SIZE)
    batch = _env_whole(sdk_env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, min(SDK_DEFAULT_MAX_EXPORT_BATCH_SIZE, queue))
    if batch > queue:
        variable = sdk_env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE
        raise SettingError(variable, variable, str(batch), f"{_WHOLE}, at most the queue size ({queue})")
    for variable in _COMPRESSION_ENV:
        raw = os.environ.get(variable)
        if raw is not None and raw.strip().lower() not in COMPRESSIONS:
            raise SettingError(variable, variable, raw, " or ".join(COMPRESSIONS))


def make_sampler(name: str, ratio: float | None) -> Sampler:
    """The SDK sampler a checked ``sampler`` (and ``sampler_arg``) names."""
    return SAMPLERS[name](1.0 if ratio is None else ratio)
