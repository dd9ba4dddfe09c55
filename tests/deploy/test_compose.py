"""The compose file's scale-out profile, the nginx balancer's configuration, and the settings
that every deployment file names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from service.settings import GroundingSettings, Settings
from tests.deploy.deploy_files import (
    DEPLOY,
    NGINX_CONF,
    compose,
    nginx_args,
    nginx_for_loopback,
)

REPLICAS = ("cogcore-a", "cogcore-b")


def setting_names() -> set[str]:
    """Every variable the service's settings read: COGCORE_ + each field (the grounding
    group reads the same prefix)."""
    fields = {*Settings.model_fields, *GroundingSettings.model_fields} - {"grounding"}
    return {f"COGCORE_{name.upper()}" for name in fields}


def unknown_settings(text: str) -> set[str]:
    return set(re.findall(r"\bCOGCORE_[A-Z0-9_]+\b", text)) - setting_names()


def test_every_cogcore_variable_in_deploy_is_a_real_setting() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and "wheels" not in p.parts
             and p.suffix in {".yml", ".yaml", ".sh", ".conf", ".example", ".json"}]
    named = set()
    for path in files:
        text = path.read_text()
        named |= set(re.findall(r"\bCOGCORE_[A-Z0-9_]+\b", text))
        assert unknown_settings(text) == set(), path
    assert {"COGCORE_KB_URL", "COGCORE_KB_DIR", "COGCORE_API_KEYS"} <= named
    assert unknown_settings("COGCORE_KB_URI=postgresql://x") == {"COGCORE_KB_URI"}


def test_the_embedded_default_is_unchanged() -> None:
    services = compose()["services"]
    embedded = services["cogcore"]
    assert "profiles" not in embedded
    assert embedded["environment"]["COGCORE_KB_DIR"] == "/data/kb/default"
    assert "kb:/data/kb" in embedded["volumes"]
    assert "COGCORE_KB_URL" not in embedded["environment"]
    # Nothing outside the profile depends on it, so the profile can run without it.
    assert all("cogcore" not in s.get("depends_on", {}) for s in services.values())


def test_the_scale_profile_has_the_database_two_replicas_and_the_balancer() -> None:
    spec = compose()
    services = spec["services"]
    scale = {name for name, s in services.items() if "scale" in s.get("profiles", [])}
    assert scale == {"postgres", "kb-seed", *REPLICAS, "balancer"}

    postgres = services["postgres"]
    assert postgres["image"].startswith("pgvector/pgvector:")
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in spec["volumes"]  # a named volume, not a bind mount
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ports" not in postgres

    env = postgres["environment"]
    for name in (*REPLICAS, "kb-seed"):
        url = urlsplit(services[name]["environment"]["COGCORE_KB_URL"])
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
        assert url.username == env["POSTGRES_USER"] and url.path == "/" + env["POSTGRES_DB"]
        assert url.password == env["POSTGRES_PASSWORD"]  # the same ${KB_DB_PASSWORD:-...}
    for name in REPLICAS:
        replica = services[name]
        assert "volumes" not in replica and "ports" not in replica  # stateless, behind nginx
        assert replica["image"] == services["cogcore"]["image"]
        assert "/ready" in " ".join(replica["healthcheck"]["test"])
        assert replica["depends_on"]["kb-seed"]["condition"] == "service_completed_successfully"

    balancer = services["balancer"]
    assert balancer["image"].startswith("nginx:")
    assert "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in balancer["volumes"]
    assert {name: d["condition"] for name, d in balancer["depends_on"].items()} == {
        name: "service_healthy" for name in REPLICAS}
    seed = spec["configs"][services["kb-seed"]["configs"][0]["source"]]["file"]
    assert (DEPLOY / seed).is_file()


def test_the_balancer_sends_to_both_replicas_and_streams() -> None:
    conf = NGINX_CONF.read_text()
    upstream = re.search(r"upstream cogcore \{(.*?)\}", conf, re.S).group(1)
    assert re.findall(r"server ([\w-]+):8000", upstream) == list(REPLICAS)
    assert "least_conn;" in upstream
    assert "proxy_buffering off;" in conf
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1))
    assert read_timeout > Settings.model_fields["request_timeout_s"].default
    body = re.search(r"client_max_body_size (\d+)m;", conf).group(1)
    assert int(body) * 2**20 > Settings.model_fields["max_body_bytes"].default


@pytest.mark.skipif(shutil.which("nginx") is None,
                    reason="nginx is not installed (Debian: apt-get install nginx-light)")
def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    conf = nginx_for_loopback(tmp_path, {name: 8000 + n for n, name in enumerate(REPLICAS)},
                              port=18080)
    result = subprocess.run([*nginx_args(conf), "-t"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
    broken = tmp_path / "broken.conf"
    broken.write_text(conf.read_text().replace("proxy_buffering off;", "proxy_buffering of;"))
    assert subprocess.run([*nginx_args(broken), "-t"], capture_output=True,
                          timeout=30).returncode != 0
