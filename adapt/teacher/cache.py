"""Persistent teacher scores in SQLite, so no prompt is ever scored twice.

A score is keyed by the teacher's fingerprint, the template's digest (text, labels, lengths), the
query and document ids, their texts' hash and the pair order. Each batch is committed as it is
scored, so a killed run loses at most the batch in flight; WAL mode lets two runs share one file.
"""

import hashlib
import sqlite3
from pathlib import Path
from typing import ClassVar

from adapt import hub
from adapt.errors import AdaptError

SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    teacher TEXT NOT NULL,
    template TEXT NOT NULL,
    query_id TEXT NOT NULL,
    doc_a TEXT NOT NULL,
    doc_b TEXT NOT NULL,
    content TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY (teacher, template, query_id, doc_a, doc_b, content)
)
"""

# Queries the teacher wrote (corpus-only runs), by batch: sampling in a batch depends on the
# whole batch, so a batch is the unit stored, found and sharded.
WRITTEN = """
CREATE TABLE IF NOT EXISTS written (
    teacher TEXT NOT NULL,
    template TEXT NOT NULL,
    batch TEXT NOT NULL,
    passage_id TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (teacher, template, batch, passage_id)
)
"""

Key = tuple[str, str, str, str, str, str]


def _attached(db: sqlite3.Connection) -> bool:
    return any(row[1] == "other" for row in db.execute("PRAGMA database_list"))


def content_hash(*texts: str) -> str:
    """Ids alone are not enough: an edited corpus must not reuse the old document's score."""
    return hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]


def shared_path() -> Path:
    """The score cache every run shares unless told to keep its own: the keys hold the teacher,
    the template and the texts, so a score found there is the score that would be computed."""
    return hub.cache_dir() / "teacher-scores.sqlite"


def _count(path: Path, table: str, after: int = 0) -> int:
    """Rows of `table`, or those with a rowid above `after`: rows inserted since a mark."""
    db = sqlite3.connect(path, timeout=60)
    try:
        return db.execute(f"SELECT COUNT(*) FROM {table} WHERE rowid > ?", (after,)).fetchone()[0]
    except sqlite3.OperationalError:  # created, never written
        return 0
    finally:
        db.close()


def count_scores(path: Path) -> int:
    return _count(path, "scores")


class ScoreCache:
    # The last rowid of each table (scores, written queries) in each cache file when this
    # process first opened it. What an interrupted command kept is read from the file as the
    # rows above these marks, not from a tally the process keeps (an interrupt between a commit
    # and the tally's update lost a chunk from it), and marking costs no scan of a large file.
    opened: ClassVar[dict[Path, tuple[int, int]]] = {}

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, timeout=60)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)
        self.db.execute(WRITTEN)
        self.db.commit()
        scores, written = (
            self.db.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchone()[0]
            for table in ("scores", "written")
        )
        ScoreCache.opened.setdefault(path.resolve(), (scores, written))

    @staticmethod
    def gained() -> dict[Path, tuple[int, int]]:
        """(scores, written queries) each cache file gained since this process opened it
        (another process writing the same file meanwhile counts too)."""
        return {
            path: (_count(path, "scores", scores), _count(path, "written", written))
            for path, (scores, written) in ScoreCache.opened.items()
        }

    def get_many(self, keys: list[Key]) -> dict[Key, float]:
        found: dict[Key, float] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            clause = " OR ".join(
                ["(teacher=? AND template=? AND query_id=? AND doc_a=? AND doc_b=? AND content=?)"]
                * len(chunk)
            )
            params = [value for key in chunk for value in key]
            for row in self.db.execute(f"SELECT * FROM scores WHERE {clause}", params):
                found[tuple(row[:6])] = row[6]
        return found

    def put_many(self, items: list[tuple[Key, float]]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*key, float(score)) for key, score in items],
            )

    def get_written(self, teacher: str, template: str, batch: str) -> dict[str, str]:
        rows = self.db.execute(
            "SELECT passage_id, text FROM written WHERE teacher=? AND template=? AND batch=?",
            (teacher, template, batch),
        )
        return dict(rows.fetchall())

    def put_written(self, teacher: str, template: str, batch: str, texts: dict[str, str]) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO written VALUES (?, ?, ?, ?, ?)",
                [(teacher, template, batch, passage, text) for passage, text in texts.items()],
            )

    def merge(self, other: Path) -> int:
        """Copy in every score (and written query) of another cache file; returns how many
        scores were new."""
        if not other.is_file():
            raise AdaptError(f"{other}: score cache not found")
        before = len(self)
        try:
            self.db.execute("ATTACH DATABASE ? AS other", (str(other),))
            tables = {row[0] for row in self.db.execute("SELECT name FROM other.sqlite_master")}
            with self.db:
                self.db.execute("INSERT OR IGNORE INTO scores SELECT * FROM other.scores")
                if "written" in tables:  # caches from before corpus-only runs have none
                    self.db.execute("INSERT OR IGNORE INTO written SELECT * FROM other.written")
        except sqlite3.DatabaseError as err:
            raise AdaptError(f"{other}: not an adapt score cache ({err})") from None
        finally:
            if _attached(self.db):
                self.db.execute("DETACH DATABASE other")
        return len(self) - before

    def __len__(self) -> int:
        return count_scores(self.path)

    def close(self) -> None:
        self.db.close()
