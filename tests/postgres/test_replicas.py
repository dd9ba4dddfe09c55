"""Two real `cogcore serve` replicas on one PostgreSQL: what one writes, the other serves at once.

Both start together on an empty database (one migrates, the other waits for it), load the real
default core, and are then written and read through, crosswise, with the real openai client.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from cogcore.paths import default_core_dir
from loadtest.server import Server, start, stop
from retrieval.postgres.local_server import create_database

ADMIN = {"Authorization": "Bearer admin"}
FACT = "The capital of Zorbania is Quellport. Zorbania lies on the Northern Sea."


@pytest.fixture(scope="module")
def replicas(pg_admin_url: str, default_kb_dir: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Two servers on one new database, started at the same moment."""
    core = default_core_dir()
    if not (core / "config.json").is_file():
        pytest.skip("the default core is not built (make core)")
    url = create_database(pg_admin_url, "kb_replicas")
    logs = tmp_path_factory.mktemp("replicas")
    env = {"COGCORE_KB_URL": url, "COGCORE_KB_DIR": str(default_kb_dir),  # its router only
           "COGCORE_ADMIN_KEYS": "admin", "COGCORE_TORCH_THREADS": "1"}
    with ThreadPoolExecutor(2) as pool:
        started = [pool.submit(start, core, logs / f"{n}.log", env) for n in "ab"]
        servers = [s.result() for s in started]
    yield servers
    for server in servers:
        stop(server)


@pytest.mark.real_model
def test_a_document_written_through_one_replica_is_answered_by_the_other(
        replicas: list[Server]) -> None:
    a, b = (httpx.Client(base_url=s.url, headers=ADMIN, timeout=120) for s in replicas)
    put = a.post("/v1/documents", json={"documents": [{"id": "zorbania", "text": FACT}]})
    assert put.status_code == 200, put.text
    hits = b.post("/v1/search", json={"query": "capital of Zorbania", "k": 1}).json()["data"]
    assert hits[0]["document_id"] == "zorbania"
    client = OpenAI(base_url=f"{replicas[1].url}/v1", api_key="admin", max_retries=0)
    reply = client.chat.completions.create(
        model=replicas[1].model, temperature=0, max_tokens=24,
        messages=[{"role": "user", "content": "What is the capital of Zorbania?"}])
    assert "Quellport" in (reply.choices[0].message.content or "")
    assert b.delete("/v1/documents/zorbania").status_code == 200
    assert a.get("/v1/documents/zorbania").status_code == 404
    hits = a.post("/v1/search", json={"query": "capital of Zorbania Quellport", "k": 3})
    assert "zorbania" not in {h["document_id"] for h in hits.json()["data"]}


@pytest.mark.real_model
def test_both_replicas_take_writes_at_once(replicas: list[Server]) -> None:
    clients = [httpx.Client(base_url=s.url, headers=ADMIN, timeout=120) for s in replicas]

    def write(n: int) -> int:
        doc = {"id": f"note-{n}", "text": f"Harbour note {n}: ship {n} docked at pier {n % 5}."}
        return clients[n % 2].post("/v1/documents", json={"documents": [doc]}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(write, range(24)))
    assert statuses == [200] * 24  # no 409: no writer lock between replicas
    for client in clients:
        ids = {d["id"] for d in client.get("/v1/documents", params={"limit": 100}).json()["data"]}
        assert {f"note-{n}" for n in range(24)} <= ids
