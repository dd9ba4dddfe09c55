"""Questions answerable only from a file added through the API, measured through HTTP.

Usage: .venv/bin/python benchmarks/files_eval.py [--model DIR] [--kb DIR] [--out DIR]

Starts `cogcore serve` on a copy of the knowledge base (the original is never written),
uploads two files written for this benchmark through `POST /v1/files` (multipart, as the openai
client does): a Markdown handbook of an invented research station and a three-page PDF report
of an invented glassworks (made here with matplotlib's PDF backend: no binary in git). Every
fact in them is made up, so no model can know it. Then 20 questions, each a greedy chat
completion with retrieval `auto`, as a user asks:
- `tune`: direct wh-questions ("Who founded ...?"), the forms looked at while building;
- `heldout`: other forms (imperatives, "I'd like to know ...", numeric and inverse lookups),
  never tuned on.
Scored per question: correct (the reply holds the answer, not abstained), cited (a source, and
an annotation, from the uploaded file), cited at the place (the cited section holds the
answer's sentence), wrong with a citation, abstained.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from facts_eval import KEY, MAX_TOKENS, bounded, rate

from cogcore.facts import mentions
from cogcore.paths import artifacts_dir, default_kb_dir
from loadtest.server import running_service
from service.settings import default_model_dir

HANDBOOK = """# Tessaly Bay Research Station

Operations handbook for staff and visiting scientists.

## Overview

Tessaly Bay Research Station was founded in 1987 by the oceanographer Maren Holvik.
The station stands on the northern shore of Kerrin Island, two hours by boat from Harlow Port.

## Staff

The station director is Oskar Veldane. The chief diver of the station is Liva Sornes.
Fourteen scientists work at the station during the summer season.

## Boats

The research vessel of the station is named Grey Petrel. The Grey Petrel is 23 metres long
and sleeps eight crew. The small launch Kittiwake carries six passengers.

## Daily schedule

Breakfast in the mess hall is served at 6:45. The supply boat from Harlow Port arrives every
Thursday.

## Safety

The emergency radio channel of the station is channel 72. Every dive is logged with the dive
officer before anyone enters the water.

### Cold-water diving

The minimum water temperature for training dives at the station is 4 degrees.

## Supplies

The fresh water of the station comes from the Brenning spring. The diesel generator holds
900 litres of fuel.
"""

REPORT_TITLE = "Quarrendon Glassworks: Annual Report 2031"
REPORT_PAGES = [
    ["About the company",
     "Quarrendon Glassworks was founded in 1904 in the town of Aldmere. Quarrendon "
     "Glassworks employs 212 people. The managing director of Quarrendon Glassworks is "
     "Petra Lindqvist."],
    ["Production",
     "The main furnace of Quarrendon Glassworks is called Old Brenna. Old Brenna melts 18 "
     "tonnes of glass each day. The best-selling product of Quarrendon Glassworks is the "
     "Halden carafe. The blue glass of Quarrendon Glassworks is coloured with cobalt from "
     "Sarnoy."],
    ["Finances and outlook",
     "The revenue of Quarrendon Glassworks in 2031 was 41 million crowns. Quarrendon "
     "Glassworks plans to open a second factory in Vetrana in 2033. The apprentice school "
     "of Quarrendon Glassworks trains 30 apprentices each year."],
]


@dataclass(frozen=True)
class Question:
    """A question, its split, the file that answers it, the answers accepted, the evidence."""

    text: str
    split: str
    file: str  # "handbook" or "report"
    answers: tuple[str, ...]
    evidence: str  # a piece of the sentence that answers it


QUESTIONS = [
    Question("Who founded Tessaly Bay Research Station?", "tune", "handbook",
             ("Maren Holvik",), "founded in 1987"),
    Question("What is the name of the research vessel of Tessaly Bay Research Station?",
             "tune", "handbook", ("Grey Petrel",), "is named Grey Petrel"),
    Question("What is the emergency radio channel of Tessaly Bay Research Station?", "tune",
             "handbook", ("72",), "channel 72"),
    Question("Who is the chief diver of Tessaly Bay Research Station?", "tune", "handbook",
             ("Liva Sornes",), "Liva Sornes"),
    Question("Where does the fresh water of Tessaly Bay Research Station come from?", "tune",
             "handbook", ("Brenning",), "Brenning spring"),
    Question("Who is the managing director of Quarrendon Glassworks?", "tune", "report",
             ("Petra Lindqvist",), "Petra Lindqvist"),
    Question("In which town was Quarrendon Glassworks founded?", "tune", "report",
             ("Aldmere",), "town of Aldmere"),
    Question("What is the main furnace of Quarrendon Glassworks called?", "tune", "report",
             ("Old Brenna",), "is called Old Brenna"),
    Question("What is the best-selling product of Quarrendon Glassworks?", "tune", "report",
             ("Halden carafe",), "Halden carafe"),
    Question("Where will Quarrendon Glassworks open a second factory?", "tune", "report",
             ("Vetrana",), "factory in Vetrana"),
    # Held out: other forms, never looked at while building.
    Question("Tell me who directs the station on Kerrin Island.", "heldout", "handbook",
             ("Oskar Veldane",), "director is Oskar Veldane"),
    Question("How long is the Grey Petrel?", "heldout", "handbook", ("23 metres", "23"),
             "23 metres"),
    Question("Which island is Tessaly Bay Research Station on?", "heldout", "handbook",
             ("Kerrin Island", "Kerrin"), "Kerrin Island"),
    Question("On which day of the week does the supply boat from Harlow Port arrive?",
             "heldout", "handbook", ("Thursday",), "every Thursday"),
    Question("I'd like to know the minimum water temperature for training dives at Tessaly "
             "Bay.", "heldout", "handbook", ("4 degrees", "4"), "4 degrees"),
    Question("How many people does Quarrendon Glassworks employ?", "heldout", "report",
             ("212",), "employs 212"),
    Question("The cobalt for Quarrendon's blue glass comes from where?", "heldout", "report",
             ("Sarnoy",), "cobalt from Sarnoy"),
    Question("How much glass does Old Brenna melt each day?", "heldout", "report",
             ("18 tonnes", "18"), "18 tonnes"),
    Question("Give the number of apprentices the Quarrendon apprentice school trains per "
             "year.", "heldout", "report", ("30",), "30 apprentices"),
    Question("What revenue did Quarrendon Glassworks report for 2031?", "heldout", "report",
             ("41 million", "41"), "41 million crowns"),
]


def report_pdf() -> bytes:
    """The glassworks report as a three-page PDF with a text layer (one heading a page)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buffer = io.BytesIO()
    with matplotlib.rc_context({"pdf.fonttype": 42}), \
            PdfPages(buffer, metadata={"Title": REPORT_TITLE}) as pdf:
        for heading, body in REPORT_PAGES:
            figure = plt.figure(figsize=(8.27, 11.69))
            figure.text(0.08, 0.92, heading, fontsize=16)
            for i, line in enumerate(textwrap.wrap(body, 80)):
                figure.text(0.08, 0.87 - i * 0.025, line, fontsize=11)
            pdf.savefig(figure)
            plt.close(figure)
    return buffer.getvalue()


async def upload(client: httpx.AsyncClient, name: str, data: bytes, media: str) -> dict:
    """One file through POST /v1/files; its file object."""
    response = await client.post("/v1/files", files={"file": (name, data, media)},
                                 data={"purpose": "assistants"})
    response.raise_for_status()
    return response.json()


async def sections(client: httpx.AsyncClient, file: dict) -> dict[str, str]:
    """The stored text of each section of an uploaded file, by document id."""
    out = {}
    for n in range(file["sections"]):
        doc_id = f"{file['id']}#{n}"
        response = await client.get("/v1/documents/" + quote(doc_id, safe=""))
        response.raise_for_status()
        out[doc_id] = response.json()["text"]
    return out


async def ask(client: httpx.AsyncClient, model: str, q: Question, file_id: str,
              held: dict[str, str], max_tokens: int) -> dict:
    """One question; the reply, what it cites and how it scores."""
    body = {"model": model, "messages": [{"role": "user", "content": q.text}],
            "max_tokens": max_tokens, "temperature": 0}
    response = await client.post("/v1/chat/completions", json=body)
    response.raise_for_status()
    data = response.json()
    message, info = data["choices"][0]["message"], data["cogcore"]
    answer = message["content"]
    sources = info["sources"]
    from_file = [s for s in sources if s["metadata"].get("file_id") == file_id]
    correct = any(mentions(answer, a) for a in q.answers) and not info["abstained"]
    notes = [a["url_citation"] for a in message.get("annotations", [])]
    return {
        "question": q.text, "split": q.split, "file": q.file, "expected": q.answers[0],
        "answer": answer, "route": info["route"], "abstained": info["abstained"],
        "correct": correct, "cited": bool(from_file),
        "annotated": any(n.get("file_id") == file_id for n in notes),
        "cited_at_place": any(q.evidence in held.get(s["id"], "") for s in from_file),
        "sources": [{"id": s["id"], "location": s["metadata"].get("location"),
                     "text": s["text"]} for s in sources],
        "annotation_titles": [n["title"] for n in notes],
    }


def score(rows: list[dict]) -> dict:
    """The rates of one group of questions."""
    return {
        "correct_and_cited": rate([r["correct"] and r["cited"] for r in rows]),
        "correct_and_cited_at_place": rate([r["correct"] and r["cited_at_place"]
                                            for r in rows]),
        "correct": rate([r["correct"] for r in rows]),
        "annotations_name_the_file": rate([r["annotated"] for r in rows if r["cited"]]),
        "wrong_with_citation": rate([not r["correct"] and bool(r["sources"])
                                     and not r["abstained"] for r in rows]),
        "abstained": rate([r["abstained"] for r in rows]),
        "routed_to_facts": rate([r["route"] == "facts" for r in rows]),
    }


async def measure(url: str, model: str, max_tokens: int) -> dict:
    """Upload both files, ask every question; rates per split and file, and every row."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"},
                                 timeout=600) as client:
        files = {"handbook": await upload(client, "tessaly-handbook.md", HANDBOOK.encode(),
                                          "text/markdown"),
                 "report": await upload(client, "quarrendon-report.pdf", report_pdf(),
                                        "application/pdf")}
        held = {k: v for f in files.values() for k, v in (await sections(client, f)).items()}
        rows = await bounded(ask(client, model, q, files[q.file]["id"], held, max_tokens)
                             for q in QUESTIONS)
    groups = {"all": rows, **{s: [r for r in rows if r["split"] == s]
                              for s in ("tune", "heldout")},
              **{f: [r for r in rows if r["file"] == f] for f in ("handbook", "report")}}
    return {"files": {k: {key: f[key] for key in ("id", "format", "sections", "chunks")}
                      for k, f in files.items()},
            **{name: score(group) for name, group in groups.items()}, "rows": rows}


def main() -> None:
    """Copy the knowledge base, serve it, upload the files, ask, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=default_model_dir(),
                        help="[default: what `cogcore serve` serves: the core, else the base]")
    parser.add_argument("--kb", type=Path, default=default_kb_dir())
    parser.add_argument("--max-tokens", type=int, default=MAX_TOKENS)
    parser.add_argument("--out", type=Path, default=artifacts_dir() / "reports" / "files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        kb = Path(scratch) / "kb"
        shutil.copytree(args.kb, kb, ignore=shutil.ignore_patterns("writer.lock"))
        env = {"COGCORE_ADMIN_KEYS": KEY, "COGCORE_KB_DIR": str(kb)}
        with running_service(args.model, env) as (url, model):
            report = asyncio.run(measure(url, model, args.max_tokens))
    report = {"model": str(args.model), "max_tokens": args.max_tokens, **report}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "files.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
