"""SEPA credit transfer initiation files (ISO 20022 pain.001.001.09) for the city's bank, from stdlib XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"


@dataclass(frozen=True)
class Payment:
    """One credit transfer: `end_to_end_id` travels to the merchant's bank statement."""

    end_to_end_id: str
    amount_cents: int
    creditor_name: str
    creditor_iban: str
    remittance: str


@dataclass(frozen=True)
class Initiation:
    message_id: str
    payment_information_id: str
    created_at: datetime
    execution_date: date
    debtor_name: str
    debtor_iban: str
    payments: Sequence[Payment]


def euros(cents: int) -> str:
    return str((Decimal(cents) / 100).quantize(Decimal("0.01")))


def _text(parent: ET.Element, tag: str, value: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = value
    return element


def _account(parent: ET.Element, tag: str, iban: str) -> None:
    identification = ET.SubElement(ET.SubElement(parent, tag), "Id")
    _text(identification, "IBAN", iban)


def pain001(initiation: Initiation) -> str:
    """The XML document; payments with a zero amount are left out (a credit transfer must be positive)."""
    payments = [p for p in initiation.payments if p.amount_cents > 0]
    total = euros(sum(p.amount_cents for p in payments))
    document = ET.Element("Document", {"xmlns": NAMESPACE})
    root = ET.SubElement(document, "CstmrCdtTrfInitn")
    header = ET.SubElement(root, "GrpHdr")
    _text(header, "MsgId", initiation.message_id[:35])
    _text(header, "CreDtTm", initiation.created_at.replace(microsecond=0).isoformat())
    _text(header, "NbOfTxs", str(len(payments)))
    _text(header, "CtrlSum", total)
    _text(ET.SubElement(header, "InitgPty"), "Nm", initiation.debtor_name[:140])
    info = ET.SubElement(root, "PmtInf")
    _text(info, "PmtInfId", initiation.payment_information_id[:35])
    _text(info, "PmtMtd", "TRF")
    _text(info, "BtchBookg", "true")
    _text(info, "NbOfTxs", str(len(payments)))
    _text(info, "CtrlSum", total)
    _text(ET.SubElement(ET.SubElement(info, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    _text(ET.SubElement(info, "ReqdExctnDt"), "Dt", initiation.execution_date.isoformat())
    _text(ET.SubElement(info, "Dbtr"), "Nm", initiation.debtor_name[:140])
    _account(info, "DbtrAcct", initiation.debtor_iban)
    other = ET.SubElement(ET.SubElement(ET.SubElement(info, "DbtrAgt"), "FinInstnId"), "Othr")
    _text(other, "Id", "NOTPROVIDED")
    _text(info, "ChrgBr", "SLEV")
    for payment in payments:
        _transaction(info, payment)
    ET.indent(document)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(document, encoding="unicode") + "\n"


def _transaction(info: ET.Element, payment: Payment) -> None:
    transaction = ET.SubElement(info, "CdtTrfTxInf")
    _text(ET.SubElement(transaction, "PmtId"), "EndToEndId", payment.end_to_end_id[:35])
    _text(ET.SubElement(transaction, "Amt"), "InstdAmt", euros(payment.amount_cents), Ccy="EUR")
    _text(ET.SubElement(transaction, "Cdtr"), "Nm", payment.creditor_name[:140])
    _account(transaction, "CdtrAcct", payment.creditor_iban)
    _text(ET.SubElement(transaction, "RmtInf"), "Ustrd", payment.remittance[:140])
