"""The message catalogue: Dutch by default, English as a choice; missing Dutch text falls back to English."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LANGUAGES = {"nl": "Nederlands", "en": "English"}
DEFAULT_LANGUAGE = "nl"

Translate = Callable[..., str]

# Keys are the English text's short name; values may hold `{name}` placeholders.
MESSAGES: dict[str, dict[str, str]] = {
    "app_name": {"nl": "CityBlocks", "en": "CityBlocks"},
    "skip_to_content": {"nl": "Naar de inhoud", "en": "Skip to content"},
    "language": {"nl": "Taal", "en": "Language"},
    "login": {"nl": "Aanmelden", "en": "Log in"},
    "logout": {"nl": "Afmelden", "en": "Log out"},
    "login_title": {"nl": "Aanmelden bij CityBlocks", "en": "Log in to CityBlocks"},
    "login_intro": {
        "nl": "Ontwikkelomgeving: kies een demogebruiker. Elke rol ziet de pagina's voor zijn werk.",
        "en": "Development environment: pick a demo user. Each role sees the pages for its job.",
    },
    "demo_user": {"nl": "Demogebruiker", "en": "Demo user"},
    "login_failed": {"nl": "Aanmelden mislukt: {detail}", "en": "Login failed: {detail}"},
    "logged_in_as": {"nl": "Aangemeld als {name} ({city})", "en": "Logged in as {name} ({city})"},
    "welcome": {"nl": "Welkom, {name}", "en": "Welcome, {name}"},
    "your_pages": {"nl": "Uw pagina's", "en": "Your pages"},
    "public_pages": {"nl": "Openbare pagina's", "en": "Public pages"},
    "main_navigation": {"nl": "Hoofdnavigatie", "en": "Main navigation"},
    "home": {"nl": "Start", "en": "Home"},
    "not_available_yet": {
        "nl": "Deze dienst is nog niet beschikbaar.",
        "en": "This service is not available yet.",
    },
    "service_error": {
        "nl": "De dienst {service} antwoordde niet zoals verwacht: {detail}",
        "en": "The {service} service did not answer as expected: {detail}",
    },
    "forbidden": {"nl": "Deze pagina is niet voor uw rol.", "en": "This page is not for your role."},
    "role_city_admin": {"nl": "Stadsbeheerder", "en": "City admin"},
    "role_market_master": {"nl": "Marktmeester", "en": "Market master"},
    "role_trader": {"nl": "Marktkramer", "en": "Trader"},
    "role_operator": {"nl": "Logistiek operator", "en": "Logistics operator"},
    "role_driver": {"nl": "Chauffeur", "en": "Driver"},
    "role_shipper": {"nl": "Verlader", "en": "Shipper"},
    "role_citizen": {"nl": "Inwoner", "en": "Citizen"},
    "role_provider": {"nl": "Vervoersaanbieder", "en": "Mobility provider"},
    "role_merchant": {"nl": "Handelaar", "en": "Merchant"},
    "role_school": {"nl": "School", "en": "School"},
    "nav_ops": {"nl": "Operaties", "en": "Operations"},
    "nav_feed": {"nl": "Live gebeurtenissen", "en": "Live events"},
    "nav_dead_letters": {"nl": "Dode brieven", "en": "Dead letters"},
    "nav_kpis": {"nl": "Kerncijfers", "en": "Key figures"},
    "nav_markets": {"nl": "Markten", "en": "Markets"},
    "nav_my_markets": {"nl": "Mijn markten", "en": "My markets"},
    "nav_invoices": {"nl": "Facturen", "en": "Invoices"},
    "nav_public_markets": {"nl": "Marktdagen", "en": "Market days"},
    "nav_wallet": {"nl": "Mijn mobiliteitsbudget", "en": "My mobility credit"},
    "nav_coins": {"nl": "Mijn munten", "en": "My coins"},
    "nav_campaigns": {"nl": "Campagnes", "en": "Campaigns"},
    "nav_till": {"nl": "Kassa", "en": "Till"},
    "nav_orders": {"nl": "Bestellingen", "en": "Orders"},
    "nav_routes": {"nl": "Routes", "en": "Routes"},
    "nav_my_route": {"nl": "Mijn route", "en": "My route"},
    "ops_title": {"nl": "Operaties", "en": "Operations"},
    "health": {"nl": "Gezondheid van de diensten", "en": "Service health"},
    "service": {"nl": "Dienst", "en": "Service"},
    "status": {"nl": "Status", "en": "Status"},
    "details": {"nl": "Details", "en": "Details"},
    "ready": {"nl": "gereed", "en": "ready"},
    "not_ready": {"nl": "niet gereed", "en": "not ready"},
    "unreachable": {"nl": "onbereikbaar", "en": "unreachable"},
    "consumer_lag": {"nl": "Achterstand per consumentgroep", "en": "Consumer lag per group"},
    "consumer_group": {"nl": "Consumentgroep", "en": "Consumer group"},
    "lag": {"nl": "Achterstand (berichten)", "en": "Lag (records)"},
    "no_lag_data": {"nl": "Geen gegevens over achterstand.", "en": "No lag figures."},
    "dead_letters": {"nl": "Dode brieven", "en": "Dead letters"},
    "dead_letters_intro": {
        "nl": "Gebeurtenissen die een dienst na herhaalde pogingen niet kon verwerken.",
        "en": "Events a service could not process after repeated attempts.",
    },
    "no_dead_letters": {"nl": "Geen dode brieven.", "en": "No dead letters."},
    "event_type": {"nl": "Type", "en": "Type"},
    "topic": {"nl": "Onderwerp", "en": "Topic"},
    "error": {"nl": "Fout", "en": "Error"},
    "attempts": {"nl": "Pogingen", "en": "Attempts"},
    "created": {"nl": "Aangemaakt", "en": "Created"},
    "replayed": {"nl": "Opnieuw verwerkt", "en": "Replayed"},
    "replay": {"nl": "Opnieuw verwerken", "en": "Replay"},
    "replay_done": {"nl": "Dode brief {id} opnieuw verwerkt.", "en": "Dead letter {id} replayed."},
    "replay_failed": {"nl": "Opnieuw verwerken mislukt: {detail}", "en": "Replay failed: {detail}"},
    "live_feed": {"nl": "Live gebeurtenissen", "en": "Live events"},
    "live_feed_intro": {
        "nl": "Nieuwe gebeurtenissen van uw gemeente verschijnen hier meteen.",
        "en": "New events of your municipality appear here as they happen.",
    },
    "feed_connected": {"nl": "Verbonden", "en": "Connected"},
    "feed_disconnected": {"nl": "Verbinding verbroken, opnieuw proberen…", "en": "Disconnected, retrying…"},
    "no_events": {"nl": "Nog geen gebeurtenissen.", "en": "No events yet."},
    "time": {"nl": "Tijd", "en": "Time"},
    "event": {"nl": "Gebeurtenis", "en": "Event"},
    "subject": {"nl": "Onderwerp-id", "en": "Subject"},
    "refresh": {"nl": "Vernieuwen", "en": "Refresh"},
    "yes": {"nl": "ja", "en": "yes"},
    "no": {"nl": "nee", "en": "no"},
    "save": {"nl": "Opslaan", "en": "Save"},
    "search": {"nl": "Zoeken", "en": "Search"},
    "none_found": {"nl": "Niets gevonden.", "en": "Nothing found."},
}


def translator(language: str) -> Translate:
    """`t("key", name=...)` in `language`; an unknown key shows itself so that gaps are visible, not fatal."""
    lang = language if language in LANGUAGES else DEFAULT_LANGUAGE

    def t(key: str, **values: Any) -> str:
        texts = MESSAGES.get(key)
        if texts is None:
            return key
        text = texts.get(lang) or texts["en"]
        return text.format(**values) if values else text

    return t


def choose_language(cookie: str | None) -> str:
    """The cookie's choice, else Dutch (the platform's default even when the browser prefers English)."""
    if cookie in LANGUAGES:
        return cookie
    return DEFAULT_LANGUAGE
