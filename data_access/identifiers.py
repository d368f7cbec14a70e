"""How personal identifiers are normalised and hashed in the store, for looking a typed value up.

The store never holds e-mail addresses, phone numbers or payment cards in clear text: they are
SHA-256 hex digests of the normalised value (see ``data_access/demo.py``: e-mail trimmed and
lower-cased; phone as ``+`` country code and digits, ``+1`` when ten digits are typed; cards as
given). Other identifiers (loyalty, CRM, cookie and device ids) are pseudonymous and stored as
they are. A lookup therefore hashes what was typed the same way and matches digests, so the
clear value never reaches the engine or the page.
"""

from __future__ import annotations

import hashlib
import re

HASHED_TYPES = ("email", "phone", "pos_card")
PLAIN_TYPES = ("loyalty_id", "crm_id", "cookie_id", "device_id")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def normalised_phone(text: str) -> str | None:
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None
    if text.strip().startswith("+"):
        return f"+{digits}"
    if len(digits) == 10:
        return f"+1{digits}"
    if len(digits) == 11 and digits.startswith("1"):
        return f"+{digits}"
    return f"+{digits}"


def stored_forms(identifier_type: str, typed: str) -> tuple[str, ...]:
    """The values a typed identifier of this type can have in the identities table."""
    text = typed.strip()
    if not text:
        return ()
    if identifier_type == "email":
        return (_sha256(text.lower()),)
    if identifier_type == "phone":
        phone = normalised_phone(text)
        return (_sha256(phone),) if phone else ()
    if identifier_type == "pos_card":
        return (_sha256(text),)
    return (text, text.upper()) if text.upper() != text else (text,)


def lookup_values(typed: str) -> dict[str, tuple[str, ...]]:
    """Per identifier type, the stored forms of a value typed without saying what it is."""
    return {kind: forms for kind in (*HASHED_TYPES, *PLAIN_TYPES) if (forms := stored_forms(kind, typed))}


def masked(value: str) -> str:
    """A digest shortened for display: enough to compare, nothing to reverse."""
    return f"sha256 {value[:10]}…" if _DIGEST.fullmatch(value or "") else value
