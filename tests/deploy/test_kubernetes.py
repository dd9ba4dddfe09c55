"""What the Kubernetes manifests mean: no shared SQLite under an autoscaler, probes on the
paths the app answers as they assume, an autoscaler on a metric the service exports, and a
database URL that matches the database."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi.testclient import TestClient

from service.app import Resources, create_app
from service.settings import Settings
from tests.deploy.deploy_files import K8S, KUSTOMIZATIONS, kustomize, of_kind, one
from tests.deploy.test_dashboard import exported_names
from tests.service.slow_upstream import slow_upstream

ADAPTER_VALUES = K8S / "prometheus-adapter" / "values.yaml"


def rwx_claims_under_autoscaler(resources: list[dict[str, Any]]) -> list[str]:
    """Workloads that an autoscaler scales and that mount a ReadWriteMany claim (a store
    shared by several pods), as "Kind/name -> claim"."""
    rwx = {r["metadata"]["name"] for r in of_kind(resources, "PersistentVolumeClaim")
           if "ReadWriteMany" in r["spec"].get("accessModes", [])}
    scaled = {(h["spec"]["scaleTargetRef"]["kind"], h["spec"]["scaleTargetRef"]["name"])
              for h in of_kind(resources, "HorizontalPodAutoscaler")}
    found = []
    for workload in resources:
        key = (workload["kind"], workload["metadata"]["name"])
        if key not in scaled:
            continue
        for volume in workload["spec"]["template"]["spec"].get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim in rwx:
                found.append(f"{key[0]}/{key[1]} -> {claim}")
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: kustomize(path) for name, path in KUSTOMIZATIONS.items()}


def test_no_shared_sqlite_volume_under_an_autoscaler(rendered: dict) -> None:
    for name, resources in rendered.items():
        assert rwx_claims_under_autoscaler(resources) == [], name
        claims = of_kind(resources, "PersistentVolumeClaim")
        assert all("ReadWriteMany" not in c["spec"]["accessModes"] for c in claims), name


def test_the_check_finds_the_old_shared_sqlite_configuration(rendered: dict) -> None:
    """The configuration this replaced: the autoscaled Deployment on a ReadWriteMany claim."""
    resources = [dict(r) for r in rendered["embedded"]]
    claim = one(resources, "PersistentVolumeClaim", "cogcore-kb")
    claim["spec"] = {**claim["spec"], "accessModes": ["ReadWriteMany"]}
    hpa = one(rendered["scale"], "HorizontalPodAutoscaler", "cogcore")
    assert rwx_claims_under_autoscaler([*resources, hpa]) == ["Deployment/cogcore -> cogcore-kb"]


def test_the_scaled_deployment_is_stateless_and_reads_the_database_url(rendered: dict) -> None:
    resources = rendered["scale"]
    hpa = one(resources, "HorizontalPodAutoscaler", "cogcore")
    target = hpa["spec"]["scaleTargetRef"]
    deployment = one(resources, target["kind"], target["name"])
    pod = deployment["spec"]["template"]["spec"]
    assert "volumes" not in pod and "replicas" not in deployment["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    ref = env["COGCORE_KB_URL"]["valueFrom"]["secretKeyRef"]
    secret = one(resources, "Secret", ref["name"])
    url = urlsplit(secret["stringData"][ref["key"]])
    # The URL names the in-cluster database: its Service, user, database and password.
    postgres = one(resources, "StatefulSet", "cogcore-postgres")
    pg_env = {e["name"]: e for e in postgres["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert url.scheme == "postgresql" and url.port == 5432
    assert url.hostname == postgres["spec"]["serviceName"]
    assert one(resources, "Service", url.hostname)["spec"]["clusterIP"] == "None"
    assert url.username == pg_env["POSTGRES_USER"]["value"]
    assert url.path == "/" + pg_env["POSTGRES_DB"]["value"]
    password_ref = pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert url.password == one(resources, "Secret", password_ref["name"])["stringData"][
        password_ref["key"]]
    assert postgres["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "pgvector/pgvector:")
    template = postgres["spec"]["volumeClaimTemplates"][0]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_the_external_database_variant_has_no_database_and_no_database_secret(
        rendered: dict) -> None:
    kinds = {r["kind"] for r in rendered["external-db"]}
    assert "StatefulSet" not in kinds and "HorizontalPodAutoscaler" in kinds
    assert "cogcore-db" not in {s["metadata"]["name"] for s in of_kind(rendered["external-db"],
                                                                        "Secret")}


def test_the_embedded_variant_is_one_replica_without_an_autoscaler(rendered: dict) -> None:
    resources = rendered["embedded"]
    assert of_kind(resources, "HorizontalPodAutoscaler") == []
    assert of_kind(resources, "StatefulSet") == []
    deployment = one(resources, "Deployment", "cogcore")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    env = {e["name"]: e.get("value") for e in
           deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "COGCORE_KB_URL" not in env and env["COGCORE_KB_DIR"] == "/kb/default"
    claim = one(resources, "PersistentVolumeClaim", "cogcore-kb")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def probes(resources: list[dict[str, Any]]) -> dict[str, str]:
    container = one(resources, "Deployment", "cogcore")["spec"]["template"]["spec"][
        "containers"][0]
    return {kind: container[f"{kind}Probe"]["httpGet"]["path"]
            for kind in ("startup", "readiness", "liveness")}


def test_probes_point_at_the_right_paths(rendered: dict) -> None:
    for resources in rendered.values():
        assert probes(resources) == {"startup": "/ready", "readiness": "/ready",
                                     "liveness": "/health"}


def test_the_probe_paths_answer_as_the_probes_assume(rendered: dict) -> None:
    """While the model loads, the startup path answers 503 and the liveness path 200; after a
    failed load the startup path stays 503 (so the kubelet restarts the pod); after a good
    load both answer 200."""
    paths = probes(rendered["scale"])
    release, fail = threading.Event(), threading.Event()

    def loader(settings: Settings) -> Resources:
        release.wait(30)
        if fail.is_set():
            raise RuntimeError("the database is unreachable")
        return Resources(None, None, None, None, None)

    def wait_for_load(client: TestClient) -> None:
        for _ in range(200):
            if client.app.state.serving is not None or client.app.state.load_error:
                return
            threading.Event().wait(0.05)

    with slow_upstream(first_token_s=0.0) as url:  # /ready asks the upstream too
        settings = Settings(served_model_name="m", upstream_url=url,
                            load_kb=False, load_embedder=False, max_context=64)
        with TestClient(create_app(settings, loader=loader)) as client:
            assert client.get(paths["startup"]).status_code == 503
            assert client.get(paths["liveness"]).status_code == 200
            release.set()
            wait_for_load(client)
            assert client.get(paths["startup"]).status_code == 200
    release.clear()
    fail.set()
    with TestClient(create_app(settings, loader=loader)) as client:
        release.set()
        wait_for_load(client)
        assert client.get(paths["startup"]).status_code == 503
        assert client.get(paths["liveness"]).status_code == 200


def test_the_autoscaler_scales_on_the_exported_queue_depth(rendered: dict) -> None:
    hpa = one(rendered["scale"], "HorizontalPodAutoscaler", "cogcore")
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    rule, = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    series = rule["seriesQuery"].split("{")[0]
    assert series == "cogcore:num_requests_waiting"
    assert series in exported_names()  # the name service/metrics.py really exports
    assert rule["name"]["as"] == metric["pods"]["metric"]["name"]
    assert {"namespace", "pod"} <= set(rule["resources"]["overrides"])
    assert hpa["spec"]["minReplicas"] >= 2
