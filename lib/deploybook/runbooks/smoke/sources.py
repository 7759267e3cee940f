"""Which metrics source 04's SLA watch reads for each service, from params.

Each service's ``metrics`` (`deploybook.config.metrics.MetricsSpec`) picks one: Prometheus
queries, its own ``/metrics``, or synthetic probes made of its smoke checks (the default).
The sources are `deploybook.systems` classes; this module only wires params to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from deploybook.config import Params
from deploybook.config.metrics import MetricsSpec
from deploybook.config.models import ServiceSpec
from deploybook.core.secrets import read_secret
from deploybook.errors import ConfigError
from deploybook.runbooks.smoke.suite import SECTION_SMOKE, smoke_specs
from deploybook.systems.endpoints import SmokeSpec
from deploybook.systems.metrics import PrometheusQuerySource, ScrapeSource, Source
from deploybook.systems.synthetic import SyntheticSource


def metrics_spec(svc: ServiceSpec) -> MetricsSpec:
    """The service's setting; unset means synthetic probes, or a scrape of an explicitly
    configured ``metrics_path`` (the setting before ``metrics`` existed)."""
    if svc.metrics is not None:
        return svc.metrics
    if "metrics_path" in svc.model_fields_set:
        if svc.metrics_path:
            return MetricsSpec(source="scrape", path=svc.metrics_path)
        return MetricsSpec(source="synthetic")
    return MetricsSpec()


def probes_for(params: Params, svc: ServiceSpec, spec: MetricsSpec) -> list[SmokeSpec]:
    """The service's smoke checks (all, or those ``checks`` names); its health request
    when it has none."""
    mine = [c for c in params.smoke if c.service == svc.name]
    if spec.checks:
        unknown = sorted(set(spec.checks) - {c.name for c in mine})
        if unknown:
            raise ConfigError(
                f"{params.source}: services.{svc.name}.metrics.checks names {unknown}, which "
                f"are not smoke checks of {svc.name}; known: {[c.name for c in mine]}"
            )
        mine = [c for c in mine if c.name in spec.checks]
    names = {c.name for c in mine}
    probes = [s for s in smoke_specs(params) if s.name in names]
    if probes:
        return probes
    return [
        SmokeSpec(
            name=f"{svc.name} health", section=SECTION_SMOKE, url=svc.base_url + svc.health_path
        )
    ]


def _prometheus_url(params: Params, svc: ServiceSpec, spec: MetricsSpec) -> str:
    if spec.url:
        return spec.url
    secret = read_secret(spec.url_env or "")  # may carry credentials: scrubbed from output
    if not secret.is_set:
        raise ConfigError(
            f"{params.source}: services.{svc.name}.metrics.url_env names {spec.url_env}, "
            "which is not set; export the Prometheus URL in it or set metrics.url"
        )
    return secret.reveal()


def _prometheus(params: Params, svc: ServiceSpec, spec: MetricsSpec) -> Source:
    return PrometheusQuerySource(
        _prometheus_url(params, svc, spec),
        selector=spec.selector if spec.selector is not None else f'job="{svc.name}"',
        range_=spec.range_,
        timeout_s=spec.timeout_s,
        requests_metric=spec.requests_metric,
        bucket_metric=spec.bucket_metric,
        queue_metric=spec.queue_metric,
    )


def _scrape(params: Params, svc: ServiceSpec, spec: MetricsSpec) -> Source:
    return ScrapeSource(svc.base_url + spec.path, timeout_s=spec.timeout_s)


def _synthetic(params: Params, svc: ServiceSpec, spec: MetricsSpec) -> Source:
    return SyntheticSource(
        probes_for(params, svc, spec), repeat=spec.repeat, timeout_s=spec.timeout_s
    )


BUILDERS: Mapping[str, Callable[[Params, ServiceSpec, MetricsSpec], Source]] = {
    "prometheus": _prometheus,
    "scrape": _scrape,
    "synthetic": _synthetic,
}


def sources_for(params: Params) -> dict[str, Source]:
    """One source per watched service (``source: none`` is left out); the caller closes them."""
    built: dict[str, Source] = {}
    try:
        for svc in params.services:
            spec = metrics_spec(svc)
            if spec.source in BUILDERS:
                built[svc.name] = BUILDERS[spec.source](params, svc, spec)
    except BaseException:
        for source in built.values():
            source.close()
        raise
    return built
