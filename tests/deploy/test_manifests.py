"""Deployment files validate against their published schemas, offline.

No Docker engine or cluster runs here, so the compose file is checked against the Compose
Specification schema and the Kubernetes manifests against the Kubernetes OpenAPI schemas: each
file on its own, and each kustomization as `kubectl kustomize` renders it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.deploy_files import COMPOSE, K8S, KUSTOMIZATIONS, kustomize, tool

# Whole manifests; kustomize patches and the prometheus-adapter Helm values are not.
NOT_MANIFESTS = {"kustomization.yaml", "deployment-patch.yaml", "values.yaml"}
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name not in NOT_MANIFESTS)


def check_compose(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True,
    )


def check_k8s(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("kubernetes-validate"), "--strict", *map(str, paths)],
        capture_output=True, text=True,
    )


def test_compose_file_follows_the_compose_spec() -> None:
    result = check_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  api:\n    ports: 8000\n    restart: sometimes\n")
    assert check_compose(broken).returncode != 0


@pytest.mark.parametrize("manifest", MANIFESTS, ids=[str(p.relative_to(K8S)) for p in MANIFESTS])
def test_kubernetes_manifest_is_valid(manifest: Path) -> None:
    result = check_k8s(manifest)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_rendered_kustomization_is_valid(name: str, tmp_path: Path) -> None:
    rendered = tmp_path / f"{name}.yaml"
    rendered.write_text(yaml.safe_dump_all(kustomize(KUSTOMIZATIONS[name])))
    result = check_k8s(rendered)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource") >= 5, result.stdout


def test_kubernetes_check_rejects_a_broken_manifest(tmp_path: Path) -> None:
    broken = tmp_path / "deployment.yaml"
    broken.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n"
        "spec:\n  replicas: two\n  selector: {}\n  template: {}\n"
    )
    assert check_k8s(broken).returncode != 0


def test_every_manifest_is_in_a_kustomization() -> None:
    listed = set()
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        entries = [*spec.get("resources", []), *(p["path"] for p in spec.get("patches", [])
                                                  if "path" in p)]
        for entry in entries:
            target = (kustomization.parent / entry).resolve()
            assert target.exists(), f"{kustomization}: {entry} does not exist"
            listed.add(target)
    assert {p.resolve() for p in MANIFESTS} <= listed
    assert len(MANIFESTS) >= 10
