"""Prompt templates: TOML files that declare their scoring mode, label tokens and lengths.

Loading checks the placeholders for the mode; `resolve_labels` checks, against a real tokenizer,
that each label is a single token (multi-token labels would make "the label's logit" undefined).
"""

import hashlib
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from adapt.errors import InputError

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"

# A pairwise choice that is no file: preferences taken from the pointwise scores, no prompts.
FROM_POINTWISE = "from-pointwise"
FROM_POINTWISE_DESCRIPTION = (
    "P(i>j) = sigmoid(s_i - s_j) of the pointwise template's scores: no pairwise prompts, "
    "no extra teacher calls (--pairwise-prompt from-pointwise)"
)

MODES = {
    # mode: (kind, placeholders the template must hold, number of labels)
    "yes-no": ("pointwise", {"query", "document"}, 2),
    "query-likelihood": ("pointwise", {"document"}, 0),
    "ab": ("pairwise", {"query", "document_a", "document_b"}, 2),
    # Corpus-only runs: the teacher writes a query for a passage (up to max_query_tokens).
    "generate": ("generate", {"document"}, 0),
}


@dataclass(frozen=True)
class Template:
    name: str
    kind: str
    mode: str
    template: str
    labels: tuple[str, ...] = ()
    continuation: str = ""
    chat: bool = False
    max_query_tokens: int = 64
    max_document_tokens: int = 300
    description: str = ""

    @property
    def digest(self) -> str:
        """Identifies everything that changes a score: text, labels, lengths, chat wrapping."""
        blob = repr(
            (
                self.mode,
                self.template,
                self.labels,
                self.continuation,
                self.chat,
                self.max_query_tokens,
                self.max_document_tokens,
            )
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def resolve_labels(self, tokenizer, source: str) -> list[int]:
        ids = []
        for label in self.labels:
            tokens = tokenizer.encode(label, add_special_tokens=False)
            if len(tokens) != 1:
                pieces = tokenizer.convert_ids_to_tokens(tokens)
                raise InputError(
                    source,
                    f"template '{self.name}': label {label!r} is {len(tokens)} tokens {pieces} "
                    "for this teacher's tokenizer; a label must be exactly one token",
                )
            if tokens[0] == tokenizer.unk_token_id:
                raise InputError(
                    source,
                    f"template '{self.name}': label {label!r} is not in this teacher's vocabulary",
                )
            ids.append(tokens[0])
        return ids


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def available() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PROMPTS_DIR.glob("*.toml"))}


def load_template(ref: str, kind: str | None = None) -> Template:
    """A built-in template name (a file in prompts/) or a path to a TOML file."""
    path = Path(ref)
    if not path.is_file():
        path = available().get(ref, path)
    if not path.is_file():
        names = ", ".join(available())
        raise InputError(ref, f"no such template file or built-in name (built-ins: {names})")
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(path, f"invalid TOML ({err})") from None
    mode = values.get("mode")
    if mode not in MODES:
        raise InputError(path, f"'mode' must be one of {', '.join(MODES)}, got {mode!r}")
    expected_kind, needed, n_labels = MODES[mode]
    if values.get("kind", expected_kind) != expected_kind:
        raise InputError(path, f"mode '{mode}' is a {expected_kind} mode, not {values['kind']}")
    if kind and expected_kind != kind:
        raise InputError(path, f"a {kind} template is needed here, this one is {expected_kind}")
    text = values.get("template")
    if not isinstance(text, str) or not text.strip():
        raise InputError(path, "missing 'template' text")
    found = _placeholders(text)
    continuation = values.get("continuation", "")
    if mode == "query-likelihood":
        if _placeholders(continuation) != {"query"}:
            raise InputError(
                path, 'query-likelihood needs continuation = " {query}" (only {query})'
            )
        found |= {"query"}
        needed = needed | {"query"}
    if found != needed:
        missing, extra = sorted(needed - found), sorted(found - needed)
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join('{' + m + '}' for m in missing)}" if missing else "",
                f"unknown {', '.join('{' + e + '}' for e in extra)}" if extra else "",
            )
            if part
        )
        raise InputError(path, f"template placeholders for mode '{mode}': {detail}")
    labels = tuple(values.get("labels", ()))
    if len(labels) != n_labels or not all(isinstance(label, str) and label for label in labels):
        raise InputError(path, f"mode '{mode}' needs {n_labels} non-empty 'labels'")
    known = {
        "description",
        "kind",
        "mode",
        "chat",
        "labels",
        "template",
        "continuation",
        "max_query_tokens",
        "max_document_tokens",
    }
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(path, f"unknown key '{unknown[0]}' (known: {', '.join(sorted(known))})")
    for key in ("max_query_tokens", "max_document_tokens"):
        value = values.get(key, 64 if key == "max_query_tokens" else 300)
        if not isinstance(value, int) or value < 1:
            raise InputError(path, f"'{key}' must be a positive integer")
    return Template(
        name=path.stem,
        kind=expected_kind,
        mode=mode,
        template=text,
        labels=labels,
        continuation=continuation,
        chat=bool(values.get("chat", False)),
        max_query_tokens=values.get("max_query_tokens", 64),
        max_document_tokens=values.get("max_document_tokens", 300),
        description=values.get("description", ""),
    )
