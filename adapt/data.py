"""Readers and validators for corpora, queries and qrels; the typed records every stage passes on.

Formats follow BEIR (a folder with `corpus.jsonl`, `queries.jsonl`, `qrels/SPLIT.tsv`) plus the
plain TSV and text files people actually have. Every reader fails with an `InputError` that names
the file, the line and what was expected.
"""

import functools
import hashlib
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from adapt.errors import InputError

Qrels = dict[str, dict[str, int]]
"""query id -> document id -> graded relevance."""


Ranking = dict[str, list[tuple[str, float]]]
"""query id -> [(document id, score)] best first: what every retriever and run file holds."""


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str
    title: str = ""

    @property
    def full_text(self) -> str:
        return f"{self.title}. {self.text}" if self.title else self.text


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    text: str


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered non-blank lines; a BOM and CRLF ends are accepted, other bytes must be UTF-8."""
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise InputError(path, f"not UTF-8 text (byte {err.start})", line) from None
    found = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            found = True
            yield number, line
    if not found:
        raise InputError(path, "file is empty")


def _json_records(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    for number, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(path, f"invalid JSON ({err.msg})", number) from None
        if not isinstance(record, dict):
            raise InputError(path, "expected a JSON object", number)
        for key in required:
            value = record.get(key)
            if key == "_id" and isinstance(value, int):
                record[key] = str(value)
            elif not isinstance(value, str):
                raise InputError(path, f"missing string field '{key}'", number)
        if not record["_id"].strip():
            raise InputError(path, "empty '_id'", number)
        yield number, record


def _tsv_rows(
    path: Path, widths: tuple[int, ...], expected: str
) -> Iterator[tuple[int, list[str]]]:
    for number, line in _lines(path):
        fields = line.split("\t")
        if len(fields) not in widths:
            raise InputError(path, f"expected {expected}, found {len(fields)} field(s)", number)
        if not fields[0].strip():
            raise InputError(path, "empty id", number)
        yield number, fields


def _check_unique(path: Path, seen: set[str], key: str, number: int) -> None:
    if key in seen:
        raise InputError(path, f"duplicate id '{key}'", number)
    seen.add(key)


def read_corpus(path: Path) -> list[Document]:
    """A BEIR folder, a `corpus.jsonl` (`_id`, `title`, `text`) or a TSV (id, [title,] text)."""
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    seen: set[str] = set()
    docs: list[Document] = []
    if path.suffix in {".tsv", ".txt"}:
        for number, fields in _tsv_rows(path, (2, 3), "id<TAB>text or id<TAB>title<TAB>text"):
            _check_unique(path, seen, fields[0], number)
            title, text = (fields[1], fields[2]) if len(fields) == 3 else ("", fields[1])
            docs.append(Document(fields[0], text, title))
    else:
        for number, record in _json_records(path, ("_id", "text")):
            _check_unique(path, seen, record["_id"], number)
            title = record.get("title") or ""
            if not isinstance(title, str):
                raise InputError(path, "field 'title' must be a string", number)
            docs.append(Document(record["_id"], record["text"], title))
    # Documents with no text are kept: real collections have them (Cranfield has two), and their
    # qrels may name them. They embed as an empty passage and rank low.
    return docs


def read_queries(path: Path, split: str | None = None) -> list[Query]:
    """`queries.jsonl`, a TSV (id, text), or plain text with one query a line.

    A plain-text query's id is `line-N`, N its line in the file: collections' own ids (`1`,
    `q0`, `PLAIN-1`) never take that form, so a run of plain-text queries cannot be scored
    silently against another numbering's qrels (`q1, q2, ...` matched the demo's `q0, q1, ...`).

    With a BEIR folder and `split`, only the queries named in `qrels/SPLIT.tsv` are kept; their
    labels are not read, so adaptation stays label-free. `half-1` and `half-2` split any query
    file 50/50 by a hash of the ids (`query_half`), for collections with one set of qrels.
    A suffix `:adapt` or `:dev` keeps two thirds or the other third of that split (or, after
    `all`, of every query), by another hash of the ids (`query_third`): settings are chosen on
    the dev third, labelled, while adaptation uses the rest, and the test split stays unseen.
    """
    path = Path(path)
    folder = path if path.is_dir() else None
    if folder:
        path = folder / "queries.jsonl"
    seen: set[str] = set()
    queries: list[Query] = []
    if path.suffix == ".tsv":
        for number, fields in _tsv_rows(path, (2,), "id<TAB>text"):
            _check_unique(path, seen, fields[0], number)
            queries.append(Query(fields[0], fields[1]))
    elif path.suffix == ".jsonl":
        for number, record in _json_records(path, ("_id", "text")):
            _check_unique(path, seen, record["_id"], number)
            queries.append(Query(record["_id"], record["text"]))
    else:
        queries = [Query(f"line-{number}", line.strip()) for number, line in _lines(path)]
    for query in queries:
        if not query.text.strip():
            raise InputError(path, f"query '{query.id}' is empty")
    if split and ":" in split:
        split, part = split.rsplit(":", 1)
        if part not in PARTS:
            raise InputError(path, f"query split suffix ':{part}': choose ':adapt' or ':dev'")
        queries = read_queries(folder or path, None if split == "all" else split)
        return [q for q in queries if (query_third(q.id) == 0) == (part == "dev")]
    if split in HALVES:
        return [q for q in queries if query_half(q.id) == split]
    if split:
        if folder is None:
            raise InputError(path, f"a query split ('{split}') needs a BEIR folder with qrels/")
        wanted = set(read_qrels(folder / "qrels" / f"{split}.tsv"))
        queries = [q for q in queries if q.id in wanted]
    return queries


HALVES = ("half-1", "half-2")


def query_half(query_id: str) -> str:
    """A fixed 50/50 split by id (sha256), the same on every machine and for every subset.

    >>> [query_half(q) for q in ("1", "2", "3")]
    ['half-2', 'half-1', 'half-1']
    """
    return HALVES[hashlib.sha256(query_id.encode()).digest()[0] & 1]


PARTS = ("adapt", "dev")


def query_third(query_id: str) -> int:
    """0, 1 or 2 by id (sha256, a byte `query_half` does not read); 0 is the dev third.

    >>> [query_third(q) for q in ("1", "2", "3", "4")]
    [2, 1, 1, 1]
    """
    return hashlib.sha256(query_id.encode()).digest()[1] % 3


def read_qrels(path: Path) -> Qrels:
    """BEIR TSV (`query-id corpus-id score`, header optional) or TREC (`qid 0 docid rel`)."""
    path = Path(path)
    qrels: Qrels = {}
    for number, line in _lines(path):
        fields = line.split()
        if number == 1 and fields[:2] == ["query-id", "corpus-id"]:
            continue
        if len(fields) == 3:
            qid, did, grade = fields
        elif len(fields) == 4:
            qid, _, did, grade = fields
        else:
            raise InputError(
                path, "expected 'query-id corpus-id score' or 'qid 0 docid rel'", number
            )
        try:
            qrels.setdefault(qid, {})[did] = int(grade)
        except ValueError:
            raise InputError(path, f"relevance must be an integer, got '{grade}'", number) from None
    return qrels


def check_qrels(path: Path, qrels: Qrels, queries: list[Query], docs: list[Document]) -> Qrels:
    """The judgments of known queries and documents. Real collections carry leftovers (judged
    queries or documents dropped from the release), so those are left out with a warning; qrels
    with nothing judged left are refused: a typo there would silently zero every metric."""
    doc_ids, query_ids = {d.id for d in docs}, {q.id for q in queries}
    known = {qid: judged for qid, judged in qrels.items() if qid in query_ids}
    kept = {qid: {d: g for d, g in judged.items() if d in doc_ids} for qid, judged in known.items()}
    kept = {qid: judged for qid, judged in kept.items() if judged}
    if not kept:
        raise InputError(path, "judges no query of the queries file with a document of the corpus")
    lost_queries = len(qrels) - len(known)
    lost_docs = sum(map(len, known.values())) - sum(map(len, kept.values()))
    if lost_queries or lost_docs:
        _warn(f"{path}: {_left_out(lost_queries, lost_docs)}; they are left out")
    return kept


def _left_out(queries: int, judgments: int) -> str:
    parts = [
        f"{queries} judged queries are not in the queries file" if queries else "",
        f"{judgments} judgments name documents not in the corpus" if judgments else "",
    ]
    return " and ".join(p for p in parts if p)


@functools.cache
def _warn(message: str) -> None:
    """Once per message: `adapt bench` loads a domain's inputs for every method."""
    print(f"warning: {message}", file=sys.stderr)


HITS_ROW = 'expected {"query_id": ..., "hits": [[doc_id, score], ...]}'


def read_candidates(path: Path, queries: list[Query], docs: list[Document]) -> list[dict]:
    """Candidate rows ({query_id, hits: [[doc_id, score], ...]}) that name only known queries
    and documents: a file made against another collection must say where, not end in a KeyError."""
    query_ids, doc_ids = {q.id for q in queries}, {d.id for d in docs}
    rows = []
    for number, line in _lines(path):
        try:
            row = json.loads(line)
            query_id, hit_ids = row["query_id"], [hit[0] for hit in row["hits"]]
        except (json.JSONDecodeError, KeyError, TypeError, IndexError):
            raise InputError(path, HITS_ROW, number) from None
        if query_id not in query_ids:
            raise InputError(path, f"query '{query_id}' is not in the queries file", number)
        if missing := [d for d in hit_ids if d not in doc_ids]:
            raise InputError(path, f"document '{missing[0]}' is not in the corpus", number)
        rows.append(row)
    return rows


def _score(text: str | float, path: Path, line: int) -> float:
    """A hit's score orders a TREC run: a typo must stop eval, not silently reorder the hits."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise InputError(path, f"score must be a number, got '{text}'", line)
    return value


def _trec_row(path: Path, line: str, number: int) -> tuple[str, list[tuple[str, float]]]:
    fields = line.split()
    if len(fields) != 6:
        raise InputError(path, "expected 'qid Q0 docid rank score tag'", number)
    return fields[0], [(fields[2], _score(fields[4], path, number))]


def _jsonl_row(path: Path, line: str, number: int) -> tuple[str, list[tuple[str, float]]]:
    try:
        row = json.loads(line)
        qid, hits = str(row["query_id"]), [(str(doc), score) for doc, score, *_ in row["hits"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(path, HITS_ROW, number) from None
    return qid, [(doc, _score(score, path, number)) for doc, score in hits]


def read_run(path: Path) -> dict[str, list[tuple[str, float]]]:
    """A TREC run (sorted by score, as trec_eval does) or adapt's JSONL (hits already ranked)."""
    if not path.is_file():
        raise InputError(path, "file not found")
    jsonl = path.suffix == ".jsonl"
    ranking: dict[str, list[tuple[str, float]]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            qid, hits = (_jsonl_row if jsonl else _trec_row)(path, line, number)
            ranking.setdefault(qid, []).extend(hits)
    if not jsonl:
        for hits in ranking.values():
            hits.sort(key=lambda hit: -hit[1])
    return ranking


def corpus_digest(docs: list[Document]) -> str:
    """The corpus's content (ids, titles, texts), as every stored index and stage records it: a
    file edited in place is another corpus.

    >>> corpus_digest([Document("d1", "text", "title")])
    'db046b2191a5f472'
    """
    value = [(d.id, d.title, d.text) for d in docs]
    return hashlib.sha256(json.dumps(value).encode()).hexdigest()[:16]
