"""The web console in a real headless chromium against a live `cogcore serve` on loopback.

The server runs the real default core (the base when the core is not built) with the real
embedder on a small temporary knowledge base, with API keys on. The tests run in order, as
one visit: the key prompt, a streamed answer with its source, an abstention, a document
added then answered and cited, deleted, then abstained on again, a file uploaded and
deleted, and the status page under a running request. Screenshots of the three pages go to
artifacts/console/ (or $COGCORE_CONSOLE_SHOTS). Run with `make console-test`, which installs
Debian's chromium and chromedriver when they are missing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from cogcore.facts import load_entities
from loadtest.server import Server, start, stop
from retrieval.documents import Document
from retrieval.embedder import Embedder
from retrieval.knowledge_base import KnowledgeBase
from service.settings import default_model_dir
from tests.conftest import REPO

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.real_model]

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1000")
READ, ADMIN = "console-read", "console-admin"
ENTITIES = ("country:france", "country:peru", "country:japan", "element:iron", "us_state:ohio")
NOTE = "The capital of Zorbania is Quellport."
UNANSWERABLE = "What is the capital of Zorbania?"
SHOTS = Path(os.environ.get("COGCORE_CONSOLE_SHOTS", REPO / "artifacts" / "console"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Server]:
    """The default core, the real embedder and five entity documents, keys on."""
    kb = tmp_path_factory.mktemp("console-kb")
    docs = [Document(e.id, e.document(), {"kind": e.kind, "name": e.name})
            for e in load_entities() if e.id in ENTITIES]
    with KnowledgeBase.open(kb, embedder=Embedder()) as base:
        base.upsert(docs)
    model = default_model_dir()
    if not (model / "config.json").is_file():
        model = request.getfixturevalue("default_base_dir")
    log = tmp_path_factory.mktemp("console-server") / "serve.log"
    running = start(model, log, env={"COGCORE_API_KEYS": READ, "COGCORE_ADMIN_KEYS": ADMIN,
                                     "COGCORE_KB_DIR": str(kb)})
    yield running
    stop(running)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """Debian's chromium through its own chromedriver: nothing is downloaded."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("Debian's chromium and chromium-driver are not installed: make console-test")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options,
                              service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def wait(driver: webdriver.Chrome, until: Callable[[webdriver.Chrome], object],
         timeout: float = 240) -> object:
    """Poll until `until` returns something true (a reply on a busy CPU may take a while)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(until)


def find(driver: webdriver.Chrome, css: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, css)


def enter_key(driver: webdriver.Chrome, key: str, expect: str) -> None:
    """The key prompt is open and says `expect`; type `key` into it."""
    wait(driver, lambda d: find(d, "#key-dialog").get_attribute("open") is not None, 60)
    assert expect in find(driver, "#key-message").text
    field = find(driver, "#key-input")
    field.clear()
    field.send_keys(key)
    find(driver, "#key-save").click()


def ask(driver: webdriver.Chrome, question: str, retrieval: str = "auto") -> WebElement:
    """Send a question from the chat page and wait for its whole streamed reply."""
    before = len(driver.find_elements(By.CSS_SELECTOR, ".message.assistant"))
    Select(find(driver, "#retrieval")).select_by_value(retrieval)
    box = find(driver, "#question")
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    selector = f".message.assistant:nth-of-type({2 * before + 2})"
    reply = wait(driver, lambda d: (m := d.find_elements(By.CSS_SELECTOR, selector))
                 and ({"done", "failed"} & set(m[0].get_attribute("class").split())) and m[0])
    assert "failed" not in reply.get_attribute("class"), reply.text
    return reply


def sources(reply: WebElement) -> list[str]:
    return [s.get_attribute("data-document") for s in reply.find_elements(By.CSS_SELECTOR,
                                                                         ".source")]


def cited(reply: WebElement) -> list[str]:
    return [s.get_attribute("data-document") for s in reply.find_elements(By.CSS_SELECTOR,
                                                                         ".source.was-cited")]


def new_chat(driver: webdriver.Chrome, server: Server) -> None:
    driver.get(f"{server.url}/console/")
    wait(driver, lambda d: "Chat · " in d.title and d.title != "Chat · Cognitive Core", 60)


def test_without_a_key_the_page_asks_for_one(browser: webdriver.Chrome, server: Server) -> None:
    browser.get(f"{server.url}/")  # the page itself needs no key
    assert browser.current_url == f"{server.url}/console/"
    enter_key(browser, "not-a-key", "This server needs an API key")
    browser.save_screenshot(str(SHOTS / "key-prompt.png"))
    enter_key(browser, READ, "This key was not accepted")
    wait(browser, lambda d: server.model in d.title, 60)
    assert find(browser, "#key-button").text == "API key: set"


def test_chat_streams_an_answer_with_its_source(browser: webdriver.Chrome,
                                                server: Server) -> None:
    new_chat(browser, server)
    reply = ask(browser, "What is the capital of Peru?")
    assert int(reply.get_attribute("data-chunks")) > 1, "the reply arrived in pieces"
    assert find(reply, ".route").text == "facts"
    assert "Lima" in find(reply, ".text").text
    assert sources(reply)[0] == "country:peru" and "country:peru" in cited(reply)
    assert "Lima" in find(reply, ".source blockquote").text
    assert "tokens" in find(reply, ".footer").text  # the usage of the last chunk


def test_unknown_entity_is_an_abstention(browser: webdriver.Chrome, server: Server) -> None:
    new_chat(browser, server)
    reply = ask(browser, UNANSWERABLE)
    assert "abstained" in reply.get_attribute("class")
    assert "abstained" in find(reply, ".abstention").text
    assert find(reply, ".text").text == "The knowledge base has no answer to this."


def test_a_document_added_is_answered_and_cited_then_deleted(browser: webdriver.Chrome,
                                                             server: Server) -> None:
    browser.get(f"{server.url}/console/kb.html")
    wait(browser, lambda d: find(d, "#doc-total").text == f"({len(ENTITIES)})", 60)
    find(browser, "#add-id").send_keys("fiction:zorbania")
    find(browser, "#add-text").send_keys(NOTE)
    find(browser, "#add-metadata").send_keys('{"kind": "fiction", "name": "Zorbania"}')
    find(browser, "#add-form button").click()
    enter_key(browser, ADMIN, "This needs an admin key")  # the read key may not write
    wait(browser, lambda d: "Added fiction:zorbania" in find(d, "#kb-notice").text, 60)
    wait(browser, lambda d: find(d, "#doc-text").text == NOTE, 30)
    assert '"kind": "fiction"' in find(browser, "#doc-metadata").text

    find(browser, "#search-query").send_keys("Zorbania capital")
    Select(find(browser, "#search-mode")).select_by_value("bm25")
    find(browser, "#search-filter").send_keys("kind=fiction")
    find(browser, "#search-form button").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results .hit"), 30)
    hits = browser.find_elements(By.CSS_SELECTOR, "#search-results .hit .doc-id")
    assert [h.text for h in hits] == ["fiction:zorbania"]

    new_chat(browser, server)
    reply = ask(browser, UNANSWERABLE)
    assert find(reply, ".route").text == "facts"
    assert "Quellport" in find(reply, ".text").text
    assert "fiction:zorbania" in cited(reply)
    ask(browser, "What is the capital of Peru?")
    assert "abstained" in ask(browser, "What is the capital of Vandoria?").get_attribute("class")
    browser.save_screenshot(str(SHOTS / "chat.png"))

    find(reply, ".source .doc-id").click()  # a source opens the document
    wait(browser, lambda d: find(d, "#doc-id").text == "fiction:zorbania", 30)
    find(browser, "#search-query").send_keys("capital city")
    find(browser, "#search-form button").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results .hit"), 30)
    browser.save_screenshot(str(SHOTS / "kb.png"))
    find(browser, "#doc-delete").click()
    find(browser, "#doc-delete").click()  # the second click deletes
    wait(browser, lambda d: "Deleted fiction:zorbania" in find(d, "#kb-notice").text, 30)
    gone = httpx.get(f"{server.url}/v1/documents/fiction:zorbania",
                     headers={"Authorization": f"Bearer {READ}"})
    assert gone.status_code == 404

    new_chat(browser, server)
    assert "abstained" in ask(browser, UNANSWERABLE).get_attribute("class")


def test_a_file_is_uploaded_and_deleted(browser: webdriver.Chrome, server: Server,
                                        tmp_path: Path) -> None:
    handbook = tmp_path / "harbour.md"
    handbook.write_text("# Harbour\n\n## Hours\n\nThe Vellmar harbour office opens at "
                        "seven.\n\n## Fees\n\nMooring costs four crowns a night.\n")
    browser.get(f"{server.url}/console/kb.html")
    find(browser, "#upload-file").send_keys(str(handbook))
    find(browser, "#upload-form button").click()
    wait(browser, lambda d: "Uploaded harbour.md" in find(d, "#kb-notice").text, 60)
    row = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#files .file"), 30)[0]
    assert "markdown" in row.text and "harbour.md" in row.text
    row.find_element(By.CSS_SELECTOR, "button").click()
    wait(browser, lambda d: "Deleted file" in find(d, "#kb-notice").text, 30)
    assert httpx.get(f"{server.url}/v1/files", headers={"Authorization": f"Bearer {READ}"}
                     ).json()["data"] == []


def test_status_shows_the_model_the_store_and_a_running_request(browser: webdriver.Chrome,
                                                                server: Server) -> None:
    browser.get(f"{server.url}/console/status.html")
    wait(browser, lambda d: find(d, "#stat-model").text == server.model, 60)
    wait(browser, lambda d: find(d, "#stat-docs").text == str(len(ENTITIES)), 60)
    body = {"model": server.model, "max_tokens": 200, "temperature": 0, "stream": True,
            "retrieval": "never",
            "messages": [{"role": "user", "content": "Write a long story about a cat."}]}

    def generate() -> None:
        with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {READ}"}, timeout=300) as r:
            r.read()

    worker = threading.Thread(target=generate)
    worker.start()
    try:
        wait(browser, lambda d: find(d, "#stat-running").text == "1", 120)
        wait(browser, lambda d: find(d, "#stat-finished").text not in ("…", "0"), 300)
    finally:
        worker.join(timeout=300)
    assert float(find(browser, "#stat-tps").text) > 0
    assert find(browser, "#stat-ttft").text.endswith(" ms")
    assert find(browser, "#stat-ready").text == "yes"
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-tps polyline")
    browser.save_screenshot(str(SHOTS / "status.png"))
