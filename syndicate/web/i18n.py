"""The words of the web pages, in each language the pages speak, and how a page picks its language.

The statements decide what a subscriber reads; these strings are only the
page around them (labels, buttons, notices). A language without strings here
falls back to English. A test keeps every language's keys the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "skip": "Skip to content",
        "feeds": "Feeds",
        "language": "Language",
        "subscribe_nav": "Subscribe",
        "subscribe_title": "Subscribe to statements",
        "subscribe_intro": (
            "Receive each statement from {site} by e-mail as soon as it is published, "
            "or gathered in a daily or weekly digest."
        ),
        "email_label": "E-mail address",
        "email_hint": "We send one mail to confirm the address. Nothing else is sent until you confirm.",
        "languages_label": "Languages",
        "categories_label": "Topics",
        "categories_hint": "Choose none to receive every topic.",
        "frequency_label": "How often",
        "freq_immediate": "Each statement as it is published",
        "freq_daily": "A daily digest",
        "freq_weekly": "A weekly digest",
        "subscribe_button": "Subscribe",
        "error_heading": "Please check the form",
        "bad_email": "Please enter a valid e-mail address, such as name@example.org.",
        "bad_choice": "Please choose from the options listed.",
        "languages_needed": "Please choose at least one language.",
        "form_expired": "This form had expired, or it was sent from another site. Please check it and send it again.",
        "check_mail_title": "Check your mail",
        "check_mail_body": (
            "Unless {email} is already subscribed, a mail with a confirmation link is on its way to it. "
            "Open that link to start receiving statements; it works for 7 days."
        ),
        "too_many_title": "Too many requests",
        "too_many_body": (
            "Too many requests came from here, or for this address. Please try again in {minutes} minute(s)."
        ),
        "confirmed_title": "Subscription confirmed",
        "confirmed_body": "{email} now receives statements from {site}.",
        "already_confirmed_title": "Already confirmed",
        "already_confirmed_body": "{email} already receives statements from {site}.",
        "change_preferences": "Change what you receive",
        "confirm_stale_title": "Nothing to confirm",
        "confirm_stale_body": (
            "This address is no longer waiting for confirmation. To receive statements again, subscribe anew."
        ),
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_question": "Stop sending statements from {site} to {email}?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You are unsubscribed",
        "unsubscribed_body": (
            "{email} will receive no more statements from {site}. You can subscribe again at any time."
        ),
        "preferences_title": "Your subscription",
        "preferences_intro": "Choose what {email} receives.",
        "save_button": "Save",
        "saved": "Your choices are saved.",
        "preferences_leave": "Or stop receiving statements altogether:",
        "status_note": "This address does not receive statements at the moment ({status}).",
        "status_pending": "waiting for confirmation",
        "status_active": "active",
        "status_unsubscribed": "unsubscribed",
        "status_bounced": "mail to it bounced",
        "status_complained": "marked our mail as spam",
        "link_malformed_title": "This link is incomplete",
        "link_malformed_body": (
            "The link is damaged or incomplete; mail programs sometimes break long links. "
            "Copy the whole link from the mail into the address bar. Nothing was changed."
        ),
        "link_invalid_title": "This link is not valid",
        "link_invalid_body": (
            "We did not make this link, or its address is no longer on our list. Nothing was changed."
        ),
        "link_expired_title": "This link has expired",
        "link_expired_body": (
            "Confirmation links work for 7 days. Subscribe again to receive a new one. Nothing was changed."
        ),
        "not_found_title": "Page not found",
        "not_found_body": "There is no page at this address.",
        "not_allowed_title": "Not possible here",
        "not_allowed_body": "This page cannot be used that way.",
        "error_title": "Something went wrong",
        "error_body": "The page could not be shown. Please try again later.",
        "back_home": "Back to {site}",
    },
    "tr": {
        "skip": "İçeriğe geç",
        "feeds": "Akışlar",
        "language": "Dil",
        "subscribe_nav": "Abone ol",
        "subscribe_title": "Açıklamalara abone olun",
        "subscribe_intro": (
            "{site} açıklamalarını yayımlanır yayımlanmaz ya da günlük veya haftalık bir özet hâlinde e-posta ile alın."
        ),
        "email_label": "E-posta adresi",
        "email_hint": (
            "Adresi doğrulamak için tek bir e-posta göndeririz. Siz onaylayana kadar başka bir şey gönderilmez."
        ),
        "languages_label": "Diller",
        "categories_label": "Konular",
        "categories_hint": "Tüm konuları almak için hiçbirini seçmeyin.",
        "frequency_label": "Sıklık",
        "freq_immediate": "Her açıklama yayımlandığında",
        "freq_daily": "Günlük özet",
        "freq_weekly": "Haftalık özet",
        "subscribe_button": "Abone ol",
        "error_heading": "Lütfen formu kontrol edin",
        "bad_email": "Lütfen ad@example.org gibi geçerli bir e-posta adresi girin.",
        "bad_choice": "Lütfen listelenen seçeneklerden birini seçin.",
        "languages_needed": "Lütfen en az bir dil seçin.",
        "form_expired": (
            "Bu formun süresi dolmuş ya da form başka bir siteden gönderilmiş. Lütfen kontrol edip yeniden gönderin."
        ),
        "check_mail_title": "E-postanızı kontrol edin",
        "check_mail_body": (
            "{email} zaten abone değilse, bu adrese onay bağlantısı içeren bir e-posta gönderiliyor. "
            "Açıklamaları almaya başlamak için bağlantıyı açın; bağlantı 7 gün geçerlidir."
        ),
        "too_many_title": "Çok fazla istek",
        "too_many_body": (
            "Buradan ya da bu adres için çok fazla istek geldi. Lütfen {minutes} dakika sonra yeniden deneyin."
        ),
        "confirmed_title": "Abonelik onaylandı",
        "confirmed_body": "{email} artık {site} açıklamalarını alıyor.",
        "already_confirmed_title": "Abonelik zaten onaylı",
        "already_confirmed_body": "{email} zaten {site} açıklamalarını alıyor.",
        "change_preferences": "Ne alacağınızı değiştirin",
        "confirm_stale_title": "Onaylanacak bir şey yok",
        "confirm_stale_body": ("Bu adres artık onay beklemiyor. Açıklamaları yeniden almak için tekrar abone olun."),
        "unsubscribe_title": "Abonelikten çık",
        "unsubscribe_question": "{site} açıklamalarının {email} adresine gönderilmesi durdurulsun mu?",
        "unsubscribe_button": "Abonelikten çık",
        "unsubscribed_title": "Abonelikten çıktınız",
        "unsubscribed_body": (
            "{email} adresine artık {site} açıklamaları gönderilmeyecek. İstediğiniz zaman yeniden abone olabilirsiniz."
        ),
        "preferences_title": "Aboneliğiniz",
        "preferences_intro": "{email} adresine ne gönderileceğini seçin.",
        "save_button": "Kaydet",
        "saved": "Seçimleriniz kaydedildi.",
        "preferences_leave": "Ya da açıklamaları almayı tamamen bırakın:",
        "status_note": "Bu adres şu anda açıklama almıyor ({status}).",
        "status_pending": "onay bekliyor",
        "status_active": "etkin",
        "status_unsubscribed": "abonelikten çıkıldı",
        "status_bounced": "e-postalar geri döndü",
        "status_complained": "e-postalarımız istenmeyen olarak işaretlendi",
        "link_malformed_title": "Bu bağlantı eksik",
        "link_malformed_body": (
            "Bağlantı bozuk ya da eksik; e-posta programları uzun bağlantıları bazen böler. "
            "Bağlantının tamamını e-postadan kopyalayıp adres çubuğuna yapıştırın. Hiçbir şey değiştirilmedi."
        ),
        "link_invalid_title": "Bu bağlantı geçerli değil",
        "link_invalid_body": (
            "Bu bağlantıyı biz oluşturmadık ya da adresi artık listemizde değil. Hiçbir şey değiştirilmedi."
        ),
        "link_expired_title": "Bu bağlantının süresi dolmuş",
        "link_expired_body": (
            "Onay bağlantıları 7 gün geçerlidir. Yenisini almak için yeniden abone olun. Hiçbir şey değiştirilmedi."
        ),
        "not_found_title": "Sayfa bulunamadı",
        "not_found_body": "Bu adreste bir sayfa yok.",
        "not_allowed_title": "Burada mümkün değil",
        "not_allowed_body": "Bu sayfa bu şekilde kullanılamaz.",
        "error_title": "Bir sorun oluştu",
        "error_body": "Sayfa gösterilemedi. Lütfen daha sonra yeniden deneyin.",
        "back_home": "{site} sitesine dön",
    },
}

DEFAULT = "en"

# Each language named in itself, for the language choices of the forms and the switcher.
LANGUAGE_NAMES = {
    "ar": "العربية",
    "de": "Deutsch",
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "ru": "Русский",
    "tr": "Türkçe",
}


def spoken() -> tuple[str, ...]:
    """The languages the pages have words for."""
    return tuple(STRINGS)


def primary(tag: str) -> str:
    """The language part of a tag (``tr`` of ``tr-TR``), lower-cased."""
    return tag.split("-")[0].lower()


def language_name(tag: str) -> str:
    """A language tag as its speakers write its name (the tag itself when unknown)."""
    return LANGUAGE_NAMES.get(tag) or LANGUAGE_NAMES.get(primary(tag)) or tag


def choose(explicit: str | None, preferred: Sequence[str], accepted: Any, site_language: str) -> str:
    """The page language: asked for, else the subscriber's, else the browser's, else the site's, else English.

    ``accepted`` is Werkzeug's parsed Accept-Language (``best_match``).
    """
    if explicit and primary(explicit) in STRINGS:
        return primary(explicit)
    own = _supported(preferred)
    if own:
        return accepted.best_match(own) or own[0]
    browser = accepted.best_match(spoken())
    if browser:
        return primary(browser)
    return primary(site_language) if primary(site_language) in STRINGS else DEFAULT


def _supported(tags: Iterable[str]) -> list[str]:
    found: list[str] = []
    for tag in tags:
        if primary(tag) in STRINGS and primary(tag) not in found:
            found.append(primary(tag))
    return found


class Words:
    """The strings of one language, for templates: ``words("key", site=...)``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.table = STRINGS.get(lang, STRINGS[DEFAULT])

    def __call__(self, key: str, **values: object) -> str:
        """The string ``key`` with ``values`` filled in (escaped later by the template)."""
        text = self.table.get(key) or STRINGS[DEFAULT][key]
        return text.format(**values) if values else text
