"""What a subscriber can choose from: the languages and categories the published statements have."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection
from werkzeug.datastructures import MultiDict

from syndicate.model import State
from syndicate.store.schema import statements
from syndicate.subscribers import Frequency


@dataclass(frozen=True)
class Catalog:
    """The choices a form offers."""

    languages: tuple[str, ...]
    categories: tuple[str, ...]
    frequencies: tuple[str, ...] = tuple(f.value for f in Frequency)

    def widened(self, languages: Iterable[str], categories: Iterable[str]) -> Catalog:
        """The same choices plus ``languages`` and ``categories`` (a subscriber keeps what they had)."""
        return Catalog(
            tuple(sorted({*self.languages, *languages})),
            tuple(sorted({*self.categories, *categories}, key=str.casefold)),
        )


def catalog(conn: Connection, site_language: str) -> Catalog:
    """The languages (the site's own always among them) and categories of published statements."""
    languages = {site_language}
    categories: set[str] = set()
    query = select(statements.c.lang, statements.c.categories).where(statements.c.state == State.PUBLISHED)
    for lang, names in conn.execute(query):
        languages.add(lang)
        categories.update(names or ())
    return Catalog(tuple(sorted(languages)), tuple(sorted(categories, key=str.casefold)))


class BadChoice(ValueError):
    """A form asked for something not on offer; ``key`` names the message to show."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Choice:
    """What a subscriber chose in a form."""

    languages: tuple[str, ...]
    categories: tuple[str, ...]
    frequency: Frequency


def read_choice(form: MultiDict[str, str], offered: Catalog, default_language: str | None) -> Choice:
    """The languages, categories and frequency in ``form``, each one checked against ``offered``.

    No language chosen means ``default_language``, or an error when there is none.
    """
    languages = tuple(sorted(set(form.getlist("languages"))))
    categories = tuple(sorted(set(form.getlist("categories")), key=str.casefold))
    frequency = form.get("frequency", Frequency.IMMEDIATE.value)
    if not set(languages) <= set(offered.languages) or not set(categories) <= set(offered.categories):
        raise BadChoice("bad_choice")
    if frequency not in offered.frequencies:
        raise BadChoice("bad_choice")
    if not languages:
        if default_language is None:
            raise BadChoice("languages_needed")
        languages = (default_language,)
    return Choice(languages, categories, Frequency(frequency))
