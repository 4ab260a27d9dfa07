"""Text normalisation on real Home Depot / WANDS strings."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from shelflab.data_io.home_depot import load_home_depot_dir, load_products
from shelflab.errors import ConfigError
from shelflab.quarantine import Quarantine
from shelflab.textnorm import (
    MOJIBAKE,
    NormalizeConfig,
    fix_mojibake,
    normalize,
    normalize_series,
)

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
# What the repaired Home Depot titles may still hold outside ASCII.
REPAIRED = set("°™–²‐")
MOJIBAKE_CHARS = re.compile("[\x80-\x9f\u00c0-\u00ff]")  # C1 controls, latin-1 letters

# Real titles (products.csv) with each mojibake sequence -> repaired text (before the other steps).
REAL_MOJIBAKE = [
    ("Dyna-Glo 40,000 BTU 360è_ Tank Top Gas", "Dyna-Glo 40,000 BTU 360° Tank Top Gas"),
    ("3 in. x 0.120-Gauge 30å¡ Galvanized Ring", "3 in. x 0.120-Gauge 30° Galvanized Ring"),
    ("Stake with Shepherd\x89Ûªs Hook (Set of 1)", "Stake with Shepherd's Hook (Set of 1)"),
    ("Quickie Tub \x89Û÷N Tile Power Scrubber", "Quickie Tub 'N Tile Power Scrubber"),
    ("Gardner Bender 1/2 in. \x89ÛÒ 2 in. Cyclone", "Gardner Bender 1/2 in. – 2 in. Cyclone"),
    ("Pushbutton Combination Lock, \x89ÛÜClay", "Pushbutton Combination Lock, Clay"),
    ("Trinity EcoStorage 3\x89Û\x90Tier 40.5 in.", "Trinity EcoStorage 3‐Tier 40.5 in."),
    ("Schlage Connect\x89ã¢ Camelot Satin Nickel", "Schlage Connect™ Camelot Satin Nickel"),
    ("Extech Instruments \x95ÈÀTriple Range", "Extech Instruments Triple Range"),
    ("MAXFIT Screwdriver SetåÊ(22-Piece)", "MAXFIT Screwdriver Set (22-Piece)"),
    ("Gard #18 - #10 AWG (5 mmå_) High Performance", "Gard #18 - #10 AWG (5 mm²) High Performance"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "fixed"), REAL_MOJIBAKE)
def test_mojibake_table_on_real_titles(raw, fixed):
    assert fix_mojibake(raw) == fixed


def test_every_table_entry_is_exercised():
    used = {k for k in MOJIBAKE for raw, _ in REAL_MOJIBAKE if k in raw}
    assert used == set(MOJIBAKE)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Whirlpool 1.9 cu. ft. Over the Range Convection Microwave",
         "whirlpool 1.9 cubic foot over the range convection microwave"),
        ("BEHR Premium Textured DeckOver 1-gal. #SC-141 Tugboat",
         "behr premium textured deckover 1 gallon #sc-141 tugboat"),
        ("Strong-Tie 2 in. x 4 in. 18-Gauge", "strong-tie 2 inch x 4 inch 18-gauge"),
        ("Husky 3/8 in. Drive 50 ft. lb. Torque", "husky 3/8 inch drive 50 foot lb. torque"),
        ("Quikrete 80 lb. Concrete Mix", "quikrete 80 pound concrete mix"),
        ("Lifeproof 1,000 sq. ft. Carpet", "lifeproof 1,000 square foot carpet"),
        ("Ryobi ONE+ 18-Volt Lithium-Ion", "ryobi one+ 18 volt lithium-ion"),
        ("Cree 60W Equivalent Soft White A19", "cree 60 watt equivalent soft white a19"),
        ("Wiremold 6 ft. 8-Outlet 15-Amp", "wiremold 6 foot 8-outlet 15 amp"),
        ("Knape &amp; Vogt 5 in. x 24 in. Shelf", "knape & vogt 5 inch x 24 inch shelf"),
        ("Corner Baker&#39;s Rack", "corner baker's rack"),
        ("Homax Texture,&amp;nbsp; Knockdown, 20oz", "homax texture, knockdown, 20 ounce"),
        ("Klein Tools 4-in-1 Tube Bender", "klein tools 4-in-1 tube bender"),
        ("General Tools Monitor with Min/Max å¡F/å¡C", "general tools monitor with min/max °f/°c"),
        # Home Depot search terms (train.csv)
        ("2x4x8", "2 x 4 x 8"),
        ("3in pvc", "3 inch pvc"),
        ("30 in range", "30 inch range"),
        ("4ft fluorescent light", "4 foot fluorescent light"),
        ("6' x 8' shed", "6 foot x 8 foot shed"),
        ("5 gal bucket", "5 gallon bucket"),
        ("90 degrees elbow", "90 degree elbow"),
        ("2 in 1 stroller", "2 in 1 stroller"),
        ("  Ceiling   FAN  ", "ceiling fan"),
        # WANDS strings (query.csv and the published product names)
        ('fawkes 36" blue vanity', "fawkes 36 inch blue vanity"),
        ("fletcher 27.5 '' wide polyester armchair", "fletcher 27.5 inch wide polyester armchair"),
        ("54 in bench cushion", "54 inch bench cushion"),
        ("Kids Wall Décor", "kids wall décor"),
        ("½ in. pipe", "1/2 inch pipe"),
    ],
)  # fmt: skip
def test_normalize_examples(raw, expected):
    assert normalize(raw) == expected


def test_query_and_item_spellings_meet():
    item = "Everbilt 3 in. Zinc-Plated Corner Brace"
    for query in ("3in corner brace", '3" corner brace', "3 inch corner brace", "3-in. brace"):
        assert normalize(query).split()[:2] == ["3", "inch"]
    assert "3 inch" in normalize(item)


def test_steps_switch_off():
    raw = "Schlage Connect\x89ã¢ 30 in. &amp;  Co"
    assert normalize(raw, NormalizeConfig(fix_mojibake=False, unicode_nfkc=False)) == (
        "schlage connect\x89ã¢ 30 inch & co"
    )
    assert (
        normalize(raw, NormalizeConfig(unescape_html=False)) == "schlage connect 30 inch &amp; co"
    )
    assert normalize(raw, NormalizeConfig(lowercase=False)) == "Schlage Connect 30 inch & Co"
    assert normalize(raw, NormalizeConfig(units=False)) == "schlage connect 30 in. & co"
    assert normalize(raw, NormalizeConfig(whitespace=False)) == "schlage connect  30 inch &  co"
    off = NormalizeConfig(**dict.fromkeys(NormalizeConfig().to_dict(), False))
    assert normalize(raw, off) == raw


def test_config_from_params():
    assert NormalizeConfig.from_params(None) == NormalizeConfig()
    assert NormalizeConfig.from_params({"units": False}).units is False
    with pytest.raises(ConfigError, match="unknown textnorm option"):
        NormalizeConfig.from_params({"stemming": True})
    with pytest.raises(ConfigError, match="true or false"):
        NormalizeConfig.from_params({"units": "no"})


def test_series_equals_scalar_and_keeps_nulls():
    raw = ["30 in. Range", None, "30 in. Range", "Connect\x89ã¢", "  "]
    s = pl.Series("text", raw)
    out = normalize_series(s)
    assert out.name == "text"
    assert out.to_list() == [normalize(x) for x in raw]
    assert out[1] is None
    assert normalize_series(pl.Series("e", [], dtype=pl.String)).len() == 0


def test_idempotent_on_sample_titles():
    items = load_home_depot_dir(SAMPLE, quarantine=Quarantine()).items
    once = normalize_series(items["text"])
    assert normalize_series(once).to_list() == once.to_list()


def _check_repaired(titles: pl.Series) -> None:
    fixed = [fix_mojibake(t) for t in titles.to_list() if not t.isascii()]
    assert fixed, "expected non-ASCII titles"
    left = {ch for t in fixed for ch in t if ord(ch) > 127}
    assert left <= REPAIRED, left - REPAIRED
    assert not any(MOJIBAKE_CHARS.search(t) for t in fixed)


def test_sample_titles_fully_repaired():
    items = load_home_depot_dir(SAMPLE, quarantine=Quarantine()).items
    _check_repaired(items["text"])


def test_full_catalog_and_terms_fully_repaired(data_dir):
    d = data_dir / "home-depot-search-relevance"
    items = load_products(d / "products.csv.gz", quarantine=Quarantine())
    assert items.filter(~pl.col("text").str.contains(r"^[\x00-\x7f]*$")).height == 197
    _check_repaired(items["text"])
    queries = load_home_depot_dir(d, quarantine=Quarantine()).queries
    assert queries["text"].str.contains(r"^[\x00-\x7f]*$").all()  # terms are plain ASCII
