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
    "market_plan": {"nl": "Marktplan", "en": "Market plan"},
    "allocation_map": {"nl": "Toewijzing op het marktplan", "en": "Allocation on the market plan"},
    "application_sent": {"nl": "Uw aanvraag is verstuurd.", "en": "Your application was sent."},
    "application_withdrawn": {"nl": "Uw aanvraag is ingetrokken.", "en": "Your application was withdrawn."},
    "yours": {"nl": "u", "en": "you"},
    "check_in_qr": {"nl": "Inchecken (QR-code)", "en": "Check-in QR code"},
    "allocation_done": {
        "nl": "Toewijzing klaar: {given} standplaatsen gegeven, {rejected} kramers zonder plaats.",
        "en": "Allocation done: {given} stalls given, {rejected} traders without a stall.",
    },
    "allocation_failed": {"nl": "Toewijzing mislukt: {detail}", "en": "Allocation failed: {detail}"},
    "not_available_title": {"nl": "Niet beschikbaar", "en": "Not available"},
    "trader_not_registered": {
        "nl": "U bent nog niet geregistreerd als marktkramer in deze gemeente.",
        "en": "You are not registered as a trader in this municipality yet.",
    },
    "my_assignments": {"nl": "Mijn standplaatsen", "en": "My stalls"},
    "date": {"nl": "Datum", "en": "Date"},
    "market": {"nl": "Markt", "en": "Market"},
    "outcome": {"nl": "Uitkomst", "en": "Outcome"},
    "explanation": {"nl": "Uitleg", "en": "Explanation"},
    "check_in": {"nl": "Inchecken", "en": "Check in"},
    "stalls": {"nl": "Standplaatsen", "en": "Stalls"},
    "stalls_lower": {"nl": "standplaatsen", "en": "stalls"},
    "stall": {"nl": "Standplaats", "en": "Stall"},
    "released": {"nl": "vrijgegeven", "en": "released"},
    "no_stall": {"nl": "geen plaats", "en": "no stall"},
    "no_assignments": {"nl": "Nog geen toewijzingen.", "en": "No allocations yet."},
    "my_applications": {"nl": "Mijn aanvragen", "en": "My applications"},
    "stalls_wanted": {"nl": "Aantal plaatsen", "en": "Stalls wanted"},
    "preferred_stalls": {"nl": "Voorkeur", "en": "Preferred stalls"},
    "withdraw": {"nl": "Intrekken", "en": "Withdraw"},
    "anywhere": {"nl": "om het even waar", "en": "anywhere"},
    "no_applications": {"nl": "Geen openstaande aanvragen.", "en": "No open applications."},
    "markets_and_days": {"nl": "Markten en marktdagen", "en": "Markets and market days"},
    "applied": {"nl": "aangevraagd", "en": "applied"},
    "apply_for_day": {"nl": "Plaats aanvragen", "en": "Apply for a stall"},
    "no_upcoming_days": {"nl": "Geen komende marktdagen.", "en": "No upcoming market days."},
    "apply_title": {"nl": "Standplaats aanvragen", "en": "Apply for a stall"},
    "apply_intro": {
        "nl": "Tik op het plan de standplaatsen aan die u het liefst wilt, de beste eerst. "
        "U kunt ze ook in de lijst aanvinken.",
        "en": "Tap the stalls you want most on the plan, best first. You can also tick them in the list.",
    },
    "legend_chosen": {
        "nl": "Gekozen plaatsen hebben een dikke rand en staan in de lijst hieronder.",
        "en": "Chosen stalls get a thick border and are listed below.",
    },
    "legend_yours": {"nl": 'Uw plaatsen zijn gemarkeerd met "u".', "en": 'Your stalls are marked "you".'},
    "legend_taken": {
        "nl": "Toegewezen plaatsen dragen de initialen van de kramer.",
        "en": "Allocated stalls carry the trader's initials.",
    },
    "your_choice": {"nl": "Uw keuze", "en": "Your choice"},
    "min_stalls": {"nl": "Minimum aantal plaatsen", "en": "Minimum stalls"},
    "max_stalls": {"nl": "Maximum aantal plaatsen", "en": "Maximum stalls"},
    "anywhere_label": {
        "nl": "Elders is ook goed als mijn voorkeur niet lukt",
        "en": "Anywhere else is fine if my preference is not possible",
    },
    "needs": {"nl": "Nodig", "en": "Needs"},
    "feature_food": {"nl": "voeding", "en": "food"},
    "feature_electricity": {"nl": "elektriciteit", "en": "electricity"},
    "feature_water": {"nl": "water", "en": "water"},
    "feature_evi": {"nl": "eigen verkoopwagen", "en": "own sales vehicle"},
    "stall_list": {"nl": "Standplaatsen als lijst", "en": "Stalls as a list"},
    "row": {"nl": "Rij", "en": "Row"},
    "send_application": {"nl": "Aanvraag versturen", "en": "Send application"},
    "my_stall": {"nl": "Mijn standplaats", "en": "My stall"},
    "setup_window": {"nl": "Opbouwen tussen {start} en {end}.", "en": "Set up between {start} and {end}."},
    "checked_in_at": {"nl": "Ingecheckt om {when}", "en": "Checked in at {when}"},
    "check_in_hint": {
        "nl": "Toon deze code aan de marktmeester bij aankomst.",
        "en": "Show this code to the market master when you arrive.",
    },
    "code_as_text": {"nl": "Code als tekst", "en": "Code as text"},
    "no_check_in_code": {"nl": "Nog geen code beschikbaar.", "en": "No code available yet."},
    "number": {"nl": "Nummer", "en": "Number"},
    "lines": {"nl": "Regels", "en": "Lines"},
    "total": {"nl": "Totaal", "en": "Total"},
    "due_on": {"nl": "Te betalen tegen", "en": "Due on"},
    "no_invoices": {"nl": "Geen facturen.", "en": "No invoices."},
    "run_allocation": {"nl": "Toewijzing uitvoeren", "en": "Run allocation"},
    "applications_count": {
        "nl": "{count} aanvragen voor deze dag.",
        "en": "{count} applications for this day.",
    },
    "solver": {"nl": "Methode", "en": "Method"},
    "greedy": {"nl": "Snel (gulzig)", "en": "Quick (greedy)"},
    "final_allocation": {"nl": "Definitief (publiceren)", "en": "Final (publish)"},
    "allocation_result": {"nl": "Resultaat van de toewijzing", "en": "Allocation result"},
    "stalls_given": {"nl": "plaatsen gegeven", "en": "stalls given"},
    "traders_placed": {"nl": "Kramers met een plaats", "en": "Traders placed"},
    "traders_rejected": {"nl": "Kramers zonder plaats", "en": "Traders without a stall"},
    "optimal": {"nl": "optimaal", "en": "optimal"},
    "final": {"nl": "definitief", "en": "final"},
    "concept": {"nl": "concept", "en": "draft"},
    "seed": {"nl": "loting-seed", "en": "lottery seed"},
    "trader": {"nl": "Kramer", "en": "Trader"},
    "holder": {"nl": "abonnee", "en": "subscriber"},
    "reason": {"nl": "Reden", "en": "Reason"},
    "allocation_runs": {"nl": "Eerdere toewijzingen", "en": "Earlier allocation runs"},
    "public_markets_intro": {
        "nl": "Wie verkoopt wat en waar op de markt.",
        "en": "Who sells what, and where, on the market.",
    },
    "search_product": {"nl": "Zoek een product", "en": "Search a product"},
    "show_all": {"nl": "Alles tonen", "en": "Show all"},
    "not_allocated_yet": {
        "nl": "De plaatsen voor deze dag zijn nog niet toegewezen.",
        "en": "The stalls for this day have not been allocated yet.",
    },
    "traders_found": {"nl": "{count} kramers gevonden.", "en": "{count} traders found."},
    "products": {"nl": "Producten", "en": "Products"},
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
