"""SEPA credit transfer initiation (ISO 20022 pain.001.001.09): one payment, one line per provider."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from xml.etree import ElementTree as ET

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
# The SEPA character set (EPC guidelines); anything else is replaced so the bank does not reject the file.
_NOT_SEPA = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")


@dataclass(frozen=True)
class Party:
    name: str
    iban: str
    bic: str | None = None
    kbo: str | None = None


@dataclass(frozen=True)
class CreditTransfer:
    end_to_end_id: str
    amount_cents: int
    creditor: Party
    remittance: str


def sepa_text(text: str, limit: int) -> str:
    return _NOT_SEPA.sub(" ", text)[:limit].strip() or "-"


def euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _agent(parent: ET.Element, tag: str, bic: str | None) -> None:
    institution = _sub(_sub(parent, tag), "FinInstnId")
    if bic:
        _sub(institution, "BICFI", bic)
    else:
        _sub(_sub(institution, "Othr"), "Id", "NOTPROVIDED")


def _account(parent: ET.Element, tag: str, iban: str) -> None:
    _sub(_sub(_sub(parent, tag), "Id"), "IBAN", iban)


def credit_transfer_initiation(
    *,
    message_id: str,
    created_at: datetime,
    execution_date: date,
    debtor: Party,
    transfers: Sequence[CreditTransfer],
) -> str:
    """The pain.001 document as UTF-8 XML text; amounts in euro with two decimals, control sums included."""
    total = sum(t.amount_cents for t in transfers)
    ET.register_namespace("", NAMESPACE)
    document = ET.Element(f"{{{NAMESPACE}}}Document")
    initiation = ET.SubElement(document, "CstmrCdtTrfInitn")
    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", sepa_text(message_id, 35))
    _sub(header, "CreDtTm", created_at.replace(microsecond=0).isoformat())
    _sub(header, "NbOfTxs", str(len(transfers)))
    _sub(header, "CtrlSum", euros(total))
    _initiating_party(header, debtor)
    payment = _sub(initiation, "PmtInf")
    _sub(payment, "PmtInfId", sepa_text(message_id, 35))
    _sub(payment, "PmtMtd", "TRF")
    _sub(payment, "BtchBookg", "true")
    _sub(payment, "NbOfTxs", str(len(transfers)))
    _sub(payment, "CtrlSum", euros(total))
    _sub(_sub(_sub(payment, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    _sub(_sub(payment, "ReqdExctnDt"), "Dt", execution_date.isoformat())
    _sub(_sub(payment, "Dbtr"), "Nm", sepa_text(debtor.name, 70))
    _account(payment, "DbtrAcct", debtor.iban)
    _agent(payment, "DbtrAgt", debtor.bic)
    _sub(payment, "ChrgBr", "SLEV")
    for item in transfers:
        _transaction(payment, item)
    ET.indent(document)
    body = ET.tostring(document, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _initiating_party(header: ET.Element, debtor: Party) -> None:
    party = _sub(header, "InitgPty")
    _sub(party, "Nm", sepa_text(debtor.name, 70))
    if debtor.kbo:
        other = _sub(_sub(_sub(party, "Id"), "OrgId"), "Othr")
        _sub(other, "Id", debtor.kbo.replace(".", ""))
        _sub(other, "Issr", "KBO-BCE")


def _transaction(payment: ET.Element, item: CreditTransfer) -> None:
    transaction = _sub(payment, "CdtTrfTxInf")
    identification = _sub(transaction, "PmtId")
    _sub(identification, "InstrId", sepa_text(item.end_to_end_id, 35))
    _sub(identification, "EndToEndId", sepa_text(item.end_to_end_id, 35))
    _sub(_sub(transaction, "Amt"), "InstdAmt", euros(item.amount_cents), Ccy="EUR")
    if item.creditor.bic:
        _agent(transaction, "CdtrAgt", item.creditor.bic)
    _sub(_sub(transaction, "Cdtr"), "Nm", sepa_text(item.creditor.name, 70))
    _account(transaction, "CdtrAcct", item.creditor.iban)
    _sub(_sub(transaction, "RmtInf"), "Ustrd", sepa_text(item.remittance, 140))
