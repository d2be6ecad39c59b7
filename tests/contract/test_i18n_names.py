"""Friendly names ([[site.names]]) through `Texts`: a name missing in the reader's language is the
name in English, else in another language it has, and the id only when it has none at all."""

from __future__ import annotations

import pytest

from contract.i18n import Names, Texts

NAMES: Names = {
    "tsagaan": {"en": "Tsagaan bag", "mn": "Цагаан баг"},
    "tsagaan/haul-road": {"en": "Haul road"},  # only English
    "tsagaan/river-up": {"mn": "Голын эх"},  # only Mongolian
    "tsagaan/camp": {"en": "", "mn": "Хуаран"},  # an empty name is no name
}


@pytest.mark.parametrize(
    ("language", "node", "expected"),
    [
        ("mn", "haul-road", "Haul road"),  # no Mongolian name: the English one, not the id
        ("en", "river-up", "Голын эх"),  # no English name: the one it has
        ("en", "camp", "Хуаран"),
        ("mn", "camp", "Хуаран"),
        ("mn", "well", "well"),  # no name in any language: the id
        ("en", "well", "well"),
    ],
)
def test_a_missing_name_falls_back_to_another_language_before_the_id(
    language: str, node: str, expected: str
) -> None:
    assert Texts(language, names=NAMES).node_name("tsagaan", node) == expected


def test_the_readers_own_language_comes_first_then_english() -> None:
    names: Names = {"s": {"mn": "Монгол", "en": "English", "de": "Deutsch"}, "t": {"de": "Deutsch"}}
    assert Texts("mn", names=names).site_name("s") == "Монгол"
    assert Texts("en", names=names).site_name("s") == "English"
    assert Texts("mn", names={"s": {"de": "Deutsch", "en": "English"}}).site_name("s") == "English"
    assert Texts("mn", names=names).site_name("t") == "Deutsch"
    assert Texts("mn", names=names).place("tsagaan", "haul-road") == Texts("mn")(
        "place.node", site="tsagaan", node="haul-road"
    )
    assert Texts("mn", names=NAMES).place("tsagaan", "haul-road") == Texts("mn")(
        "place.node", site="Цагаан баг", node="Haul road"
    )
