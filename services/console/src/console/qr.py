"""QR codes rendered on the server as inline SVG (segno), so no script or network is needed to show them."""

from __future__ import annotations

import io

import segno


def qr_svg(payload: str, *, title: str) -> str:
    """An SVG element showing `payload` as a QR code, scaled by CSS; `title` names it for screen readers."""
    code = segno.make(payload, error="m")
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        scale=1,
        border=2,
        xmldecl=False,
        svgns=True,
        title=title,
        svgclass="qr-code",
        omitsize=True,
    )
    svg = out.getvalue().decode()
    return svg.replace("<svg ", '<svg role="img" aria-label="' + _attr(title) + '" ', 1)


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
