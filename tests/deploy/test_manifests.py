"""Deployment files validate against their published schemas, offline.

No Docker engine or cluster runs here, so the compose file is checked against the Compose
Specification schema and the Kubernetes manifests against the Kubernetes OpenAPI schemas.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BIN = Path(sys.executable).parent
K8S = sorted(p for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")


def check_compose(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True,
    )


def check_k8s(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", *map(str, paths)],
        capture_output=True, text=True,
    )


def test_compose_file_follows_the_compose_spec() -> None:
    result = check_compose(DEPLOY / "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  api:\n    ports: 8000\n    restart: sometimes\n")
    assert check_compose(broken).returncode != 0


@pytest.mark.parametrize("manifest", K8S, ids=[p.stem for p in K8S])
def test_kubernetes_manifest_is_valid(manifest: Path) -> None:
    result = check_k8s(manifest)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_check_rejects_a_broken_manifest(tmp_path: Path) -> None:
    broken = tmp_path / "deployment.yaml"
    broken.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n"
        "spec:\n  replicas: two\n  selector: {}\n  template: {}\n"
    )
    assert check_k8s(broken).returncode != 0


def test_kustomization_lists_every_manifest() -> None:
    kustomization = (DEPLOY / "k8s" / "kustomization.yaml").read_text()
    assert all(f"- {p.name}" in kustomization for p in K8S)
    assert len(K8S) == 6
