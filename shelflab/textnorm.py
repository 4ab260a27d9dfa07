"""Deterministic text normalisation: the one function that turns raw query and item text into
the text models index. The same `normalize` applies to queries and items, so that "30 in." in a
title and "30in" in a query both become "30 inch".

Steps, in order, each switchable in `NormalizeConfig`:

1. fix_mojibake: the explicit `MOJIBAKE` table, then `ftfy.fix_text` (generic repairs such as
   UTF-8-read-as-cp1252 "CafÃ©"; curly quotes to ASCII). The table comes first because ftfy
   cannot repair the Home Depot sequences and even mangles one ("\\x89ã¢" -> "䋢").
2. unescape_html: "&amp;", "&#39;", "&quot;" (and the doubly escaped "&amp;nbsp;") as in the
   Home Depot titles.
3. unicode_nfkc: symbol clean-up (™ ® © removed, zero-width characters removed, dashes to "-",
   curly quotes/primes to ' and ", fraction slash to "/", × to x), then Unicode NFKC
   ("½" -> "1/2", "²" -> "2", no-break space -> space).
4. lowercase: `str.lower`.
5. units: dimension separators ("2x4", "2 in.x 4 in.", "2×4" -> "2 x 4"); a unit after a
   number becomes one canonical word and is split from the number ("3in", "3 in.", '3"' ->
   "3 inch"; "10-ft." -> "10 foot"; "18V" -> "18 volt"; "90°" -> "90 degree"); the compound
   units "cu. ft.", "sq. ft.", "sq. in.", "cu. in.", "sq. yd.", "fl. oz." are rewritten
   anywhere. A bare "in" is only a unit after a number and not in "4-in-1"/"2 in 1".
6. whitespace: runs of whitespace to one space, stripped.

The Home Depot mojibake: the Kaggle text was UTF-8, read as cp1252, written as Mac-Roman and
then read as latin-1. Inverting that chain (latin-1 encode -> Mac-Roman decode -> cp1252 encode
-> UTF-8 decode) explains every non-ASCII sequence in train.csv/products.csv except three whose
middle character had no Mac-Roman code and was written as "_" or kept as a C1 byte; those are
read from context (e.g. "90è_ 4-Hole Angle" is 90˚). All 11 sequences are in `MOJIBAKE`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import ftfy
import polars as pl

from shelflab.contract import TEXT
from shelflab.errors import ConfigError


@dataclass(frozen=True)
class NormalizeConfig:
    """Which normalisation steps run (all on by default); see the module docstring."""

    fix_mojibake: bool = True
    unescape_html: bool = True
    unicode_nfkc: bool = True
    lowercase: bool = True
    units: bool = True
    whitespace: bool = True

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> NormalizeConfig:
        """Build from a params mapping (e.g. params.yaml `textnorm:`); unknown keys or
        non-boolean values raise ConfigError."""
        params = dict(params or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(
                f"unknown textnorm option(s) {', '.join(unknown)} "
                f"(expected: {', '.join(sorted(known))})"
            )
        for k, v in params.items():
            if not isinstance(v, bool):
                raise ConfigError(f"textnorm option {k!r} must be true or false, got {v!r}")
        return cls(**params)

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)


# Home Depot mojibake (as the latin-1-decoded text shows it) -> repaired text. Counts are
# occurrences in products.csv titles (train.csv repeats them per judged pair).
MOJIBAKE: dict[str, str] = {
    "\x89Ûª": "’",  # 8x  Men‰Ûªs -> Men’s               (chain: â€™ -> ’)
    "\x89Û÷": "‘",  # 1x  Tub ‰Û÷N Tile -> Tub ‘N Tile   (chain: â€˜ -> ‘)
    "\x89ÛÒ": "–",  # 8x  1/2 in. ‰ÛÒ 2 in. -> en dash    (chain: â€“ -> –)
    "\x89ÛÜ": "",  # 2x  Lock, ‰ÛÜClay -> zero-width space, dropped (chain: â€‹)
    "\x89Û\x90": "\u2010",  # 1x  3‰Û\x90Tier -> 3‐Tier (U+2010 hyphen; cp1252 0x90 unassigned)
    "\x89ã¢": "™",  # 8x  Schlage Connect‰ã¢ -> Connect™  (chain: â„¢ -> ™)
    "\x95ÈÀ": "",  # 2x  Extech Instruments •ÈÀTriple -> a byte-order mark, dropped (ï»¿)
    "å¡": "°",  # 136x 30å¡ Galvanized -> 30° (chain: Â° -> °)
    "åÊ": " ",  # 4x  Set åÊ(22-Piece) -> no-break space (chain: Â\xa0)
    "è_": "°",  # 29x 360è_ Tank Top -> 360˚ (Ë + š, š has no Mac-Roman code -> "_")
    "å_": "²",  # 2x  AWG (5 mmå_) -> 5 mm² (Â + ², ² has no Mac-Roman code -> "_")
}
_MOJIBAKE_RE = re.compile("|".join(re.escape(k) for k in sorted(MOJIBAKE, key=len, reverse=True)))
_FTFY_CONFIG = ftfy.TextFixerConfig(unescape_html=False, explain=False)

# Applied before NFKC (which would turn ™ into "TM" and ″ into two primes).
_SYMBOLS = str.maketrans(
    {
        "™": " ",
        "®": " ",
        "©": " ",
        "\u200b": "",
        "\u200c": "",
        "\u200d": "",
        "\u2060": "",
        "\ufeff": "",
        "\u00ad": "",  # soft hyphen
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "′": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "″": '"',
        "\u2044": "/",  # fraction slash (NFKC of ½ produces it too, handled after NFKC)
        "×": "x",
        "º": "°",  # masculine ordinal, commonly typed for a degree sign
    }
)

_NUM = r"(?<![a-z0-9])(\d+(?:[.,/]\d+)*|\.\d+)"
# Units that may follow a number: canonical word -> pattern (case-insensitive). Order matters
# (longest first); alphabetic units must not run on into a word ("5 feet" ok, "5 ftx" no).
_UNITS: list[tuple[str, str]] = [
    ("cubic foot", r"cu\.?\s*f(?:ee)?t\b\.?|cubic\s*f(?:oo|ee)t\b"),
    ("square foot", r"sq\.?\s*f(?:ee)?t\b\.?|square\s*f(?:oo|ee)t\b|sqft\b"),
    ("cubic inch", r"cu\.?\s*in(?:ch(?:es)?)?\b\.?|cubic\s*inch(?:es)?\b"),
    ("square inch", r"sq\.?\s*in(?:ch(?:es)?)?\b\.?|square\s*inch(?:es)?\b"),
    ("square yard", r"sq\.?\s*y(?:ar)?ds?\b\.?|square\s*yards?\b"),
    ("fluid ounce", r"fl\.?\s*oz\b\.?|fluid\s*ounces?\b"),
    ("inch", r"inch(?:es)?\b\.?|in\.|in\b(?![\s-]*\d)|''|\""),
    ("foot", r"f(?:oo|ee)t\b|ft\b\.?|'(?![a-z])"),
    ("pound", r"lbs?\b\.?|pounds?\b"),
    ("gallon", r"gal(?:lon)?s?\b\.?"),
    ("ounce", r"oz\b\.?|ounces?\b"),
    ("quart", r"qts?\b\.?|quarts?\b"),
    ("yard", r"yds?\b\.?|yards?\b"),
    ("degree", r"°|deg\b\.?|degrees?\b"),
    ("volt", r"v\b|volts?\b"),
    ("watt", r"w\b|watts?\b"),
    ("amp", r"amps?\b|amperes?\b"),
    ("mm", r"mm\b"),
    ("cm", r"cm\b"),
]
_UNIT_RE = re.compile(
    _NUM + r"(?:\s*-\s*|\s*)(" + "|".join(f"(?:{p})" for _, p in _UNITS) + ")",
    re.IGNORECASE,
)
_UNIT_PATTERNS = [(name, re.compile(f"(?:{p})$", re.IGNORECASE)) for name, p in _UNITS]
# Compound units that are unambiguous anywhere (no number needed).
_COMPOUND_RE = re.compile(
    r"(?<![a-z])(cu\.\s*ft\.?|cu\s*ft\b|sq\.\s*ft\.?|sq\s*ft\b|cu\.\s*in\.?|sq\.\s*in\.?"
    r"|sq\.\s*yds?\.?|fl\.\s*oz\.?)",
    re.IGNORECASE,
)
_COMPOUND_NAMES = [
    ("cubic foot", re.compile(r"cu\W*ft", re.I)),
    ("square foot", re.compile(r"sq\W*ft", re.I)),
    ("cubic inch", re.compile(r"cu\W*in", re.I)),
    ("square inch", re.compile(r"sq\W*in", re.I)),
    ("square yard", re.compile(r"sq\W*yd", re.I)),
    ("fluid ounce", re.compile(r"fl\W*oz", re.I)),
]
# "2x4", "2 x 4", "6'x8'", "2 in.x 4 in." -> "... x ..."
_DIM_RE = re.compile(r"(?<=[0-9\"'.])\s*[x×]\s*(?=\.?\d)", re.IGNORECASE)
_WS_RE = re.compile(r"\s+")


def _unit_name(token: str) -> str:
    for name, pattern in _UNIT_PATTERNS:
        if pattern.match(token):
            return name
    raise AssertionError(token)  # pragma: no cover - the alternation only matches listed units


def _unit_sub(m: re.Match[str]) -> str:
    out = f"{m.group(1)} {_unit_name(m.group(2))}"
    s = m.string
    if m.end() < len(s) and s[m.end()].isalnum():
        out += " "
    return out


def _compound_sub(m: re.Match[str]) -> str:
    token = m.group(1)
    for name, pattern in _COMPOUND_NAMES:
        if pattern.match(token):
            s = m.string
            return name + (" " if m.end() < len(s) and s[m.end()].isalnum() else "")
    return token  # pragma: no cover


def fix_mojibake(text: str) -> str:
    """The explicit table, then ftfy (skipped for printable ASCII, which ftfy leaves as is)."""
    text = _MOJIBAKE_RE.sub(lambda m: MOJIBAKE[m.group(0)], text)
    if text.isascii() and text.isprintable():
        return text
    return ftfy.fix_text(text, _FTFY_CONFIG)


def unescape_html(text: str) -> str:
    for _ in range(3):  # the data holds doubly escaped entities such as "&amp;nbsp;"
        if "&" not in text:
            break
        new = html.unescape(text)
        if new == text:
            break
        text = new
    return text


def unicode_nfkc(text: str) -> str:
    text = unicodedata.normalize("NFKC", text.translate(_SYMBOLS))
    return text.replace("\u2044", "/")


def normalize_units(text: str) -> str:
    text = _DIM_RE.sub(" x ", text)
    text = _COMPOUND_RE.sub(_compound_sub, text)
    return _UNIT_RE.sub(_unit_sub, text)


def normalize(text: str | None, cfg: NormalizeConfig | None = None) -> str | None:
    """Normalise one string (None stays None). Deterministic: depends only on `text`, `cfg`
    and the pinned ftfy version."""
    if text is None:
        return None
    cfg = cfg or NormalizeConfig()
    if cfg.fix_mojibake:
        text = fix_mojibake(text)
    if cfg.unescape_html:
        text = unescape_html(text)
        if cfg.fix_mojibake and not text.isascii():
            text = ftfy.fix_text(text, _FTFY_CONFIG)  # entities can decode to curly quotes
    if cfg.unicode_nfkc:
        text = unicode_nfkc(text)
    if cfg.lowercase:
        text = text.lower()
    if cfg.units:
        text = normalize_units(text)
    if cfg.whitespace:
        text = _WS_RE.sub(" ", text).strip()
    return text


def normalize_series(series: pl.Series, cfg: NormalizeConfig | None = None) -> pl.Series:
    """`normalize` over a String Series (same name, nulls kept). Each distinct value is
    normalised once, so results equal `[normalize(x, cfg) for x in series]` exactly."""
    cfg = cfg or NormalizeConfig()
    s = series.cast(pl.String)
    uniq = s.drop_nulls().unique(maintain_order=True).to_list()
    if not uniq:
        return s
    mapping = {u: normalize(u, cfg) for u in uniq}
    return s.replace_strict(mapping, default=None, return_dtype=pl.String).alias(series.name)


def normalize_frame(df: pl.DataFrame, params: Mapping[str, Any] | None) -> pl.DataFrame:
    """`text` normalised by the `enrich` params; the original goes to `raw_text`."""
    cfg = NormalizeConfig.from_params(params)
    raw = df[TEXT] if "raw_text" not in df.columns else df["raw_text"]
    return df.with_columns(raw.alias("raw_text"), normalize_series(raw, cfg).alias(TEXT))
