"""The Kubernetes manifests as an operator applies them: rendered by kustomize, valid against
the Kubernetes schemas, and holding what a careful cluster admin checks before admitting them."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from keten.cli import build_parser
from keten.platform import SERVICES

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("dev", "production")
KUBERNETES_VERSION = "1.30.0"
#: Kinds of the Prometheus Operator: no Kubernetes schema; checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}


@cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with kustomize) must be installed to check the manifests"
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in render(overlay) if doc["kind"] == kind]


def pod_specs(overlay: str) -> dict[str, dict[str, Any]]:
    """Every pod template of the overlay by its owner's name: Deployments, Jobs, CronJobs."""
    specs = {}
    for doc in render(overlay):
        if doc["kind"] in ("Deployment", "Job"):
            specs[doc["metadata"]["name"]] = doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            specs[doc["metadata"]["name"]] = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return specs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(overlay):
    for doc in render(overlay):
        if doc["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_production_runs_one_deployment_per_service_in_its_namespace():
    deployments = {d["metadata"]["name"]: d for d in of_kind("production", "Deployment")}
    assert sorted(deployments) == sorted(f"keten-{name.replace('_', '-')}" for name in SERVICES)
    for name, deployment in deployments.items():
        assert deployment["metadata"]["namespace"] == "keten"
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        service = name.removeprefix("keten-").replace("-", "_")
        assert container["command"] + container["args"] == ["keten", "run", service]
        assert container["image"].startswith("registry.example.org/keten/keten:")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_probes_on_the_ops_port_and_resource_limits(overlay):
    for deployment in of_kind(overlay, "Deployment"):
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        name = deployment["metadata"]["name"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "ops"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}, name
        assert {"name": "ops", "containerPort": 9100, "protocol": "TCP"} in container["ports"]
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_as_a_non_root_user_on_a_read_only_filesystem_without_privileges(overlay):
    specs = pod_specs(overlay)
    assert {"keten-migrate", "keten-purge", "keten-requests-escalate"} <= set(specs)
    for name, spec in specs.items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "limits" in container["resources"], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_committed(overlay):
    assert of_kind(overlay, "Secret") == []
    for name, spec in pod_specs(overlay).items():
        for container in spec["containers"]:
            if name in WITHOUT_SECRETS:
                assert "envFrom" not in container, f"{name} needs no secret and no database: gets none"
                continue
            refs = [source.get("secretRef", {}).get("name") for source in container["envFrom"]]
            assert "keten-secrets" in refs, name
            config = [source for source in container["envFrom"] if "configMapRef" in source]
            assert config and config[0]["configMapRef"]["name"].startswith("keten-config"), name
            assert not any(env.get("name") in SECRET_SETTINGS for env in container.get("env", []))


#: Pods that reach neither the database nor the broker: the letters' layout reads and writes files.
WITHOUT_SECRETS = {"keten-letters"}

SECRET_SETTINGS = {
    "KETEN_MASTER_KEY",
    "KETEN_MASTER_KEY_PREVIOUS",
    "KETEN_PSEUDONYM_SECRET",
    "AMQP_URI",
    "DATABASE_URL",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_config_map_holds_only_settings_the_code_knows_and_no_secret(overlay):
    from tests.deploy.test_compose import known_settings

    [config] = of_kind(overlay, "ConfigMap")
    assert set(config["data"]) <= known_settings() - SECRET_SETTINGS
    assert config["data"]["OPS_PORT"] == "9100"


def test_every_service_may_lose_one_pod_to_a_drain_and_scales_out_only_where_that_is_safe():
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in of_kind("production", "PodDisruptionBudget")
    }
    deployments = {d["metadata"]["name"] for d in of_kind("production", "Deployment")}
    assert budgets == deployments
    scaled = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind("production", "HorizontalPodAutoscaler")
    }
    # retention only consumes events: one active consumer per queue, so more pods add nothing.
    assert set(scaled) == deployments - {"keten-retention"}
    assert all(h["spec"]["minReplicas"] >= 2 for h in scaled.values())
    for deployment in of_kind("production", "Deployment"):
        name = deployment["metadata"]["name"]
        assert ("replicas" in deployment["spec"]) == (name not in scaled), "the autoscaler owns replicas"
    assert of_kind("dev", "HorizontalPodAutoscaler") == []


def test_network_policies_allow_only_the_broker_the_database_dns_the_mail_relay_the_ldv_collector_and_http():
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind("production", "NetworkPolicy")}
    deny = policies["keten-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny

    def egress_ports(spec: dict) -> set:
        return {(port["protocol"], port["port"]) for rule in spec.get("egress", []) for port in rule["ports"]}

    everyone = policies.pop("keten-egress-broker-database-dns")
    assert everyone["podSelector"] == {}
    assert egress_ports(everyone) == {("TCP", 5672), ("TCP", 5671), ("TCP", 5432), ("UDP", 53), ("TCP", 53)}
    smtp = policies.pop("keten-egress-notification-smtp")
    assert smtp["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "keten-notification"
    assert egress_ports(smtp) == {("TCP", 587), ("TCP", 465)}
    ldv = policies.pop("keten-egress-ldv-collector")
    assert ldv["podSelector"] == {}  # the services and the purge CronJob record processings
    assert egress_ports(ldv) == {("TCP", 4318)}  # OTLP/HTTP to the LDV collector
    assert not any(spec.get("egress") for spec in policies.values()), "no other pod reaches out"
    ingress = {
        name: {port["port"] for rule in spec.get("ingress", []) for port in rule["ports"]}
        for name, spec in policies.items()
        if spec.get("ingress")
    }
    assert ingress == {"keten-ingress-metrics": {9100}, "keten-ingress-gateway-http": {8000}}
    gateway_selector = policies["keten-ingress-gateway-http"]["podSelector"]["matchLabels"]
    assert gateway_selector["app.kubernetes.io/name"] == "keten-gateway"


def test_prometheus_finds_every_service_by_annotation_and_by_service_monitor():
    for deployment in of_kind("production", "Deployment"):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == "9100"
    [monitor] = of_kind("production", "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "ops"
    services = of_kind("production", "Service")
    selected = monitor["spec"]["selector"]["matchLabels"].items()
    assert len([s for s in services if selected <= s["metadata"]["labels"].items()]) == len(SERVICES)


def test_the_migration_job_and_the_cronjobs_run_commands_the_cli_knows():
    [job] = of_kind("production", "Job")
    crons = {cron["metadata"]["name"]: cron for cron in of_kind("production", "CronJob")}
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    args = {}
    for name, cron in crons.items():
        assert cron["spec"]["concurrencyPolicy"] == "Forbid", name
        args[name] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == {
        "keten-purge": ["purge"],
        "keten-requests-escalate": ["requests", "escalate"],
        "keten-letters": ["letters", "render"],
    }
    assert {"migrate", "purge", "requests", "letters"} <= cli_commands()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_letters_are_handed_over_on_a_shared_volume_and_laid_out_by_the_cronjob(overlay):
    """Letters outlive a pod (not in its emptyDir), every notification replica and the layout
    job see the same folder, and the layout does not run beside the ordered event consumer."""
    [claim] = [
        c for c in of_kind(overlay, "PersistentVolumeClaim") if c["metadata"]["name"] == "keten-letters"
    ]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    specs = pod_specs(overlay)
    for name in ("keten-notification", "keten-letters"):
        spec = specs[name]
        [container] = spec["containers"]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        [volume] = [v for v in spec["volumes"] if v.get("persistentVolumeClaim")]
        assert volume["persistentVolumeClaim"]["claimName"] == "keten-letters", name
        [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert env["KETEN_LETTER_DIR"] == mount["mountPath"], name
        assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"], name
    notification_env = {
        e["name"]: e.get("value") for e in specs["keten-notification"]["containers"][0]["env"]
    }
    assert notification_env["KETEN_LETTER_RENDER_INTERVAL"] == "0"
    others = [n for n, spec in specs.items() if n not in ("keten-notification", "keten-letters")]
    for name in others:
        claims = [v for v in specs[name].get("volumes", []) if v.get("persistentVolumeClaim")]
        assert not claims, f"{name} has no business with the letters"


def cli_commands() -> set[str]:
    [subparsers] = [a for a in build_parser()._actions if a.dest == "command"]
    return set(subparsers.choices)  # type: ignore[arg-type]


def _gateway_env(overlay: str) -> dict[str, str]:
    (gateway,) = [d for d in of_kind(overlay, "Deployment") if d["metadata"]["name"].endswith("gateway")]
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_production_gateway_believes_its_one_ingress_proxy_and_dev_believes_none():
    # Behind an ingress every citizen would otherwise share the proxy's address (one login limit
    # for all) and TLS would go unseen (no HSTS); without a proxy, believing one lets clients lie.
    assert _gateway_env("production").get("KETEN_TRUSTED_PROXIES") == "1"
    assert _gateway_env("dev").get("KETEN_TRUSTED_PROXIES", "0") == "0"
