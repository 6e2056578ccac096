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
        # The operator's console (/admin).
        "console_nav": "Console",
        "dashboard_title": "Dashboard",
        "failed_title": "Failed deliveries",
        "unknown_title": "Unknown deliveries",
        "audit_title": "Audit log",
        "audit_caption": "Who did what, when, from where (newest first)",
        "logout_button": "Log out {name}",
        "viewer_note": "Your account can look at everything here; only an admin can act.",
        "login_title": "Log in to the console",
        "login_refused": "The name, password or code was not accepted, or there were too many attempts: try again later.",
        "name_label": "Name",
        "password_label": "Password",
        "code_label": "Code",
        "code_hint": "The six digits from your authenticator app, if your account uses one.",
        "login_button": "Log in",
        "statements_heading": "Statements",
        "state_draft": "drafts",
        "state_scheduled": "scheduled",
        "state_published": "published",
        "state_retracted": "retracted",
        "scheduled_caption": "Scheduled statements and the time left to each embargo",
        "col_statement": "Statement",
        "col_at": "When (UTC)",
        "col_left": "Time left",
        "left": "{hours} h {minutes} min",
        "last_tick": "Last tick {at} UTC, {seconds} s, {problems} problem(s).",
        "no_tick": "No tick has run yet.",
        "last_send": "The last mail run sent {sent} at {rate} per second.",
        "pings_owed": "Hub pings owed: {count}.",
        "run_tick": "Run a tick now",
        "subscribers_heading": "Subscribers per day",
        "chart_alt": "a chart; the same figures are in the table below it",
        "data_table": "The figures as a table",
        "col_day": "Day (UTC)",
        "col_new": "New",
        "col_confirmed": "Confirmed",
        "col_unsubscribed": "Unsubscribed",
        "col_bounced": "Bounced",
        "col_complained": "Complained",
        "deliveries_heading": "Deliveries per hour",
        "owed": "owed ({channel})",
        "col_hour": "Hour (UTC)",
        "none": "None.",
        "retry_failed": "Retry failed deliveries",
        "resend_unknown": "Resend unknown deliveries",
        "editions_heading": "Editions: bounces and complaints",
        "editions_caption": "The newest editions; Gmail's and Yahoo's line for complaints is 0.3%",
        "col_edition": "Edition",
        "col_subject": "Subject",
        "col_sent": "Sent",
        "col_hard": "Hard bounces",
        "col_soft": "Soft bounces",
        "col_complaints": "Complaints",
        "col_rate": "Complaint rate",
        "col_unsubscribes": "Unsubscribes",
        "over_line": "over the line",
        "partners_heading": "Partners",
        "col_partner": "Partner",
        "col_last_success": "Last success (UTC)",
        "col_backlog": "Backlog",
        "col_state": "State",
        "disabled": "disabled",
        "enabled": "enabled",
        "enable_partner": "Enable",
        "machinery_heading": "Nodes and relays",
        "nodes_caption": "Nodes heard from lately",
        "col_node": "Node",
        "col_role": "Role",
        "col_heartbeat": "Heartbeat (UTC)",
        "relays_caption": "Mail relays",
        "col_relay": "Relay",
        "col_sent_24h": "Sent in 24 h",
        "subscriber_actions_heading": "A subscriber",
        "unsuppress": "Take off the suppression list",
        "remove_subscriber": "Remove from the list",
        "confirm_title": "Please confirm",
        "confirm_retry_failed": "Every failed delivery will be tried again at the next tick.",
        "confirm_resend_unknown": "Every delivery whose fate is unknown will be sent again: some recipients may get it twice.",
        "confirm_enable_partner": "Pushes to {name} start again; its backlog goes at the next tick.",
        "confirm_unsuppress": "{email} will be taken off the suppression list and mailed again.",
        "confirm_remove_subscriber": "{email} will be removed from the list entirely, with the record of their consent.",
        "confirm_run_tick": "One tick runs now, here: ingest, feeds, planning and delivery.",
        "resend_count": "{count} deliveries are unknown.",
        "resend_caption": "Who would get them (the first 200)",
        "col_channel": "Channel",
        "col_target": "To",
        "col_attempts": "Attempts",
        "col_error": "Last reply",
        "col_actor": "Who",
        "col_action": "What",
        "col_detail": "Detail",
        "col_client": "From",
        "confirm_button": "Yes, do it",
        "cancel": "Cancel",
        "done_title": "Done",
        "no_such_action_title": "No such action",
        "no_such_action_body": "The console has no such action.",
        "viewer_only_title": "Not allowed",
        "viewer_only_body": "Your account can look, not act. Ask an admin.",
        "form_expired_title": "Please try again",
        "form_expired_body": "This form had expired, or it was sent from another site.",
        "action_refused_title": "Not done",
        "action_refused_body": "Nothing was changed:",
        "import_subscribers": "Read the file",
        "export_subscribers": "Export the list as CSV",
        "file_label": "Subscribers from a CSV file (a header row with an email column)",
        "consent_label": "Consent was given elsewhere: import as active, with no confirmation mail",
        "skip_invalid_label": "Import the good rows even if some are bad",
        "confirm_import_subscribers": "{rows} good row(s) will be imported; those already on the list are left as they are.",
        "import_errors_caption": "Bad rows, by line",
        "import_blocked": "Nothing is imported while there are bad rows, unless you chose to import the good ones.",
        "col_line": "Line",
        "col_reason": "Why",
        "problems_heading": "Problems",
        "last_check": "The last check ({by}, {at} UTC) found {errors} error(s) and {warnings} warning(s).",
        "no_check": "No check has been kept yet: run syndicate check.",
        "check_caption": "What the last check found",
        "tick_problems_caption": "What the last tick found in the statements and feeds",
        "preview_title": "Preview a mail",
        "preview_statement": "Statement",
        "preview_pick": "Choose a statement",
        "preview_as": "As",
        "preview_own": "its own mail",
        "preview_daily": "the daily digest",
        "preview_weekly": "the weekly digest",
        "preview_button": "Preview",
        "preview_subject": "Subject",
        "preview_from": "From",
        "preview_to": "To",
        "preview_html": "As the reader sees it",
        "preview_text": "As plain text",
        "preview_frame": "The mail's HTML, as a mail program shows it",
        "preview_sample": "Personalised for a sample reader: its links work, but are signed for no one on the list.",
        "send_test_heading": "Send it to one address as a test",
        "to_label": "To",
        "relay_label": "Relay",
        "send_test": "Send the test mail",
        "no_test_transport": 'Test mails need email.transport = "smtp": the file transport sends nothing.',
        "confirm_send_test": "The mail of {statement} goes to {to} alone, through the relay; no subscriber gets it and nothing is recorded in the outbox.",
        "replay_heading": "Replay",
        "since_label": "Sent since (site time)",
        "replay_partner": "Replay to {name}",
        "confirm_replay_partner": "{count} event(s) sent to {name} since {since} will be pushed again, as new deliveries (new webhook ids).",
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
        # The operator's console (/admin).
        "console_nav": "Konsol",
        "dashboard_title": "Pano",
        "failed_title": "Başarısız gönderimler",
        "unknown_title": "Durumu bilinmeyen gönderimler",
        "audit_title": "Denetim kaydı",
        "audit_caption": "Kim, ne zaman, nereden, ne yaptı (en yenisi önce)",
        "logout_button": "{name} oturumunu kapat",
        "viewer_note": "Hesabınız buradaki her şeyi görebilir; yalnızca bir yönetici işlem yapabilir.",
        "login_title": "Konsola giriş",
        "login_refused": "Ad, parola ya da kod kabul edilmedi veya çok fazla deneme yapıldı: daha sonra yeniden deneyin.",
        "name_label": "Ad",
        "password_label": "Parola",
        "code_label": "Kod",
        "code_hint": "Hesabınız kullanıyorsa doğrulama uygulamanızdaki altı haneli kod.",
        "login_button": "Giriş yap",
        "statements_heading": "Açıklamalar",
        "state_draft": "taslak",
        "state_scheduled": "zamanlanmış",
        "state_published": "yayımlanmış",
        "state_retracted": "geri çekilmiş",
        "scheduled_caption": "Zamanlanmış açıklamalar ve her ambargoya kalan süre",
        "col_statement": "Açıklama",
        "col_at": "Ne zaman (UTC)",
        "col_left": "Kalan süre",
        "left": "{hours} sa {minutes} dk",
        "last_tick": "Son tur {at} UTC, {seconds} sn, {problems} sorun.",
        "no_tick": "Henüz hiç tur çalışmadı.",
        "last_send": "Son posta turu saniyede {rate} hızla {sent} ileti gönderdi.",
        "pings_owed": "Bekleyen hub bildirimleri: {count}.",
        "run_tick": "Şimdi bir tur çalıştır",
        "subscribers_heading": "Günlük aboneler",
        "chart_alt": "bir grafik; aynı rakamlar altındaki tabloda",
        "data_table": "Rakamlar tablo olarak",
        "col_day": "Gün (UTC)",
        "col_new": "Yeni",
        "col_confirmed": "Onaylanan",
        "col_unsubscribed": "Ayrılan",
        "col_bounced": "Geri dönen",
        "col_complained": "Şikâyet eden",
        "deliveries_heading": "Saatlik gönderimler",
        "owed": "bekleyen ({channel})",
        "col_hour": "Saat (UTC)",
        "none": "Yok.",
        "retry_failed": "Başarısız gönderimleri yeniden dene",
        "resend_unknown": "Durumu bilinmeyenleri yeniden gönder",
        "editions_heading": "Sayılar: geri dönmeler ve şikâyetler",
        "editions_caption": "En yeni sayılar; Gmail ve Yahoo için şikâyet sınırı %0,3",
        "col_edition": "Sayı",
        "col_subject": "Konu",
        "col_sent": "Gönderilen",
        "col_hard": "Kalıcı geri dönme",
        "col_soft": "Geçici geri dönme",
        "col_complaints": "Şikâyet",
        "col_rate": "Şikâyet oranı",
        "col_unsubscribes": "Ayrılma",
        "over_line": "sınırın üstünde",
        "partners_heading": "Ortaklar",
        "col_partner": "Ortak",
        "col_last_success": "Son başarı (UTC)",
        "col_backlog": "Bekleyen",
        "col_state": "Durum",
        "disabled": "devre dışı",
        "enabled": "etkin",
        "enable_partner": "Etkinleştir",
        "machinery_heading": "Düğümler ve aktarıcılar",
        "nodes_caption": "Son zamanlarda haber alınan düğümler",
        "col_node": "Düğüm",
        "col_role": "Rol",
        "col_heartbeat": "Son sinyal (UTC)",
        "relays_caption": "Posta aktarıcıları",
        "col_relay": "Aktarıcı",
        "col_sent_24h": "24 saatte gönderilen",
        "subscriber_actions_heading": "Bir abone",
        "unsuppress": "Engel listesinden çıkar",
        "remove_subscriber": "Listeden sil",
        "confirm_title": "Lütfen onaylayın",
        "confirm_retry_failed": "Başarısız her gönderim bir sonraki turda yeniden denenecek.",
        "confirm_resend_unknown": "Durumu bilinmeyen her gönderim yeniden gönderilecek: bazı alıcılar iki kez alabilir.",
        "confirm_enable_partner": "{name} ortağına gönderim yeniden başlar; bekleyenler bir sonraki turda gider.",
        "confirm_unsuppress": "{email} engel listesinden çıkarılacak ve yeniden posta alacak.",
        "confirm_remove_subscriber": "{email}, onay kaydıyla birlikte listeden tümüyle silinecek.",
        "confirm_run_tick": "Şimdi burada bir tur çalışır: okuma, beslemeler, planlama ve gönderim.",
        "resend_count": "{count} gönderimin durumu bilinmiyor.",
        "resend_caption": "Kimlere gidecek (ilk 200)",
        "col_channel": "Kanal",
        "col_target": "Alıcı",
        "col_attempts": "Deneme",
        "col_error": "Son yanıt",
        "col_actor": "Kim",
        "col_action": "Ne",
        "col_detail": "Ayrıntı",
        "col_client": "Nereden",
        "confirm_button": "Evet, yap",
        "cancel": "Vazgeç",
        "done_title": "Yapıldı",
        "no_such_action_title": "Böyle bir işlem yok",
        "no_such_action_body": "Konsolda böyle bir işlem yok.",
        "viewer_only_title": "İzin yok",
        "viewer_only_body": "Hesabınız görebilir ama işlem yapamaz. Bir yöneticiye danışın.",
        "form_expired_title": "Lütfen yeniden deneyin",
        "form_expired_body": "Bu formun süresi dolmuş ya da başka bir siteden gönderilmiş.",
        "action_refused_title": "Yapılmadı",
        "action_refused_body": "Hiçbir şey değişmedi:",
        "import_subscribers": "Dosyayı oku",
        "export_subscribers": "Listeyi CSV olarak indir",
        "file_label": "CSV dosyasından aboneler (email sütunlu bir başlık satırı)",
        "consent_label": "Onay başka yerde alındı: etkin olarak, onay postası göndermeden içe aktar",
        "skip_invalid_label": "Bazı satırlar hatalı olsa da doğru satırları içe aktar",
        "confirm_import_subscribers": "{rows} doğru satır içe aktarılacak; listede olanlar olduğu gibi kalır.",
        "import_errors_caption": "Hatalı satırlar, satır numarasıyla",
        "import_blocked": "Doğru satırları içe aktarmayı seçmediğiniz sürece hatalı satırlar varken hiçbir şey aktarılmaz.",
        "col_line": "Satır",
        "col_reason": "Neden",
        "problems_heading": "Sorunlar",
        "last_check": "Son denetim ({by}, {at} UTC) {errors} hata ve {warnings} uyarı buldu.",
        "no_check": "Henüz saklanmış bir denetim yok: syndicate check çalıştırın.",
        "check_caption": "Son denetimin buldukları",
        "tick_problems_caption": "Son turun açıklamalarda ve beslemelerde bulduğu sorunlar",
        "preview_title": "Bir postayı önizle",
        "preview_statement": "Açıklama",
        "preview_pick": "Bir açıklama seçin",
        "preview_as": "Biçim",
        "preview_own": "kendi postası",
        "preview_daily": "günlük özet",
        "preview_weekly": "haftalık özet",
        "preview_button": "Önizle",
        "preview_subject": "Konu",
        "preview_from": "Gönderen",
        "preview_to": "Alıcı",
        "preview_html": "Okurun gördüğü gibi",
        "preview_text": "Düz metin olarak",
        "preview_frame": "Postanın HTML bölümü, bir posta programının gösterdiği gibi",
        "preview_sample": "Örnek bir okur için kişiselleştirildi: bağlantıları çalışır, ama listedeki kimse için imzalı değildir.",
        "send_test_heading": "Deneme olarak tek bir adrese gönder",
        "to_label": "Alıcı",
        "relay_label": "Aktarıcı",
        "send_test": "Deneme postasını gönder",
        "no_test_transport": 'Deneme postası için email.transport = "smtp" gerekir: dosya aktarımı bir şey göndermez.',
        "confirm_send_test": "{statement} postası yalnızca {to} adresine, aktarıcı üzerinden gider; hiçbir abone almaz ve gönderim kutusuna bir şey yazılmaz.",
        "replay_heading": "Yeniden gönder",
        "since_label": "Şu zamandan beri gönderilenler (site saati)",
        "replay_partner": "{name} ortağına yeniden gönder",
        "confirm_replay_partner": "{since} tarihinden beri {name} ortağına gönderilen {count} olay, yeni gönderimler olarak (yeni webhook kimlikleriyle) yeniden gönderilecek.",
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
