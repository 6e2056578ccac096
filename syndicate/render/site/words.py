"""The words of the site's pages in each language they are written in (English, Turkish); others read English.

A statement's page speaks its statement's language; an index speaks its
language's, or the site's.
"""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "activities": "Our Activities",
        "activities_in": "Our Activities in {language}",
        "category": "Statements on {category}",
        "newsletters": "Newsletter archive",
        "newsletters_intro": "Every edition of the newsletter, as it was mailed (without anyone's address).",
        "no_editions": "No edition has been mailed yet.",
        "no_statements": "No statement has been published yet.",
        "page_n": "page {page}",
        "older": "Older",
        "newer": "Newer",
        "older_statement": "Previous statement",
        "newer_statement": "Next statement",
        "pagination": "More statements",
        "statement_nav": "Further statements",
        "published": "Published",
        "updated": "Updated",
        "by": "By",
        "categories": "Categories",
        "translations": "Also in",
        "quote_heading": "Quoting this statement",
        "quote_text": "Part of it may be quoted with an active link to this page, for example:",
        "attribution": "First published by {organisation} at {url}.",
        "skip": "Skip to the content",
        "feeds": "Feeds",
        "site_nav": "Site",
        "languages": "Languages",
        "gone_title": "Withdrawn",
        "gone_text": "{organisation} withdrew this statement on {date}. It is no longer published.",
        "gone_undated": "{organisation} withdrew this. It is no longer published.",
        "withheld_title": "Not in the archive",
        "withheld": "This edition is not in the archive: its mail cannot be shown without a reader's details.",
        "gone_back": "See our other activities",
        "mailed": "Mailed on {date}",
        "mailed_banner": "From the newsletter archive of {organisation}: mailed on {date}.",
        "all_editions": "All editions",
        "digest": "digest",
        "subscribe": "Subscribe by email",
    },
    "tr": {
        "activities": "Faaliyetlerimiz",
        "activities_in": "Faaliyetlerimiz ({language})",
        "category": "{category} konulu açıklamalar",
        "newsletters": "Bülten arşivi",
        "newsletters_intro": "Bültenin her sayısı, gönderildiği gibi (kimsenin adresi olmadan).",
        "no_editions": "Henüz bülten gönderilmedi.",
        "no_statements": "Henüz açıklama yayımlanmadı.",
        "page_n": "sayfa {page}",
        "older": "Daha eski",
        "newer": "Daha yeni",
        "older_statement": "Önceki açıklama",
        "newer_statement": "Sonraki açıklama",
        "pagination": "Diğer açıklamalar",
        "statement_nav": "Diğer açıklamalar",
        "published": "Yayımlanma",
        "updated": "Güncellenme",
        "by": "Yazan",
        "categories": "Kategoriler",
        "translations": "Diğer dillerde",
        "quote_heading": "Bu açıklamadan alıntı",
        "quote_text": "Bu sayfaya etkin bir bağlantı verilerek bir kısmı alıntılanabilir, örneğin:",
        "attribution": "İlk olarak {organisation} tarafından {url} adresinde yayımlandı.",
        "skip": "İçeriğe geç",
        "feeds": "Beslemeler",
        "site_nav": "Site",
        "languages": "Diller",
        "gone_title": "Geri çekildi",
        "gone_text": "{organisation} bu açıklamayı {date} tarihinde geri çekti. Artık yayımlanmıyor.",
        "gone_undated": "{organisation} bunu geri çekti. Artık yayımlanmıyor.",
        "withheld_title": "Arşivde yok",
        "withheld": "Bu sayı arşivde yok: e-postası bir okurun bilgileri olmadan gösterilemiyor.",
        "gone_back": "Diğer faaliyetlerimize bakın",
        "mailed": "{date} tarihinde gönderildi",
        "mailed_banner": "{organisation} bülten arşivinden: {date} tarihinde gönderildi.",
        "all_editions": "Tüm sayılar",
        "digest": "özet",
        "subscribe": "E-postayla abone olun",
    },
}
LANGUAGE_NAMES = {"en": "English", "tr": "Türkçe", "de": "Deutsch", "fr": "Français", "ru": "Русский",
                  "ar": "العربية", "es": "Español", "az": "Azərbaycanca"}  # fmt: skip


def words_for(lang: str) -> Callable[..., str]:
    """``say(key, **values)``: the words of ``key`` in ``lang`` (English for a language without its words), as text."""
    table = _table(lang)

    def say(key: str, **values: object) -> str:
        return table[key].format(**values) if values else table[key]

    return say


def markup_for(lang: str) -> Callable[..., Markup]:
    """The templates' ``_(key, **values)``: the words as HTML, what goes into them escaped unless it is markup."""
    table = _table(lang)

    def say(key: str, **values: object) -> Markup:
        return Markup(table[key]).format(**values) if values else Markup(table[key])

    return say


def _table(lang: str) -> dict[str, str]:
    return WORDS.get(lang.split("-")[0].lower(), WORDS["en"])


def speaks(lang: str) -> str:
    """The language the words of a page in ``lang`` are in (its ``lang`` attribute for them)."""
    base = lang.split("-")[0].lower()
    return lang if base in WORDS else "en"


def language_name(tag: str) -> str:
    """A language's own name, or its tag."""
    return LANGUAGE_NAMES.get(tag.split("-")[0].lower(), tag)
