"""RFC 7986 COLOR takes a CSS3 color name: names pass through, hex colors map to the nearest name.

The CSS3 table is pydantic's (already a dependency), not a copy of our own.
"""

from __future__ import annotations

import functools

from pydantic.color import COLORS_BY_NAME


@functools.cache
def css_color_name(value: str) -> str | None:
    """The CSS3 name for `value` (a name or #rgb/#rrggbb), or None when it is neither."""
    text = value.strip().lower()
    if text in COLORS_BY_NAME:
        return text
    hexa = text.lstrip("#")
    if len(hexa) == 3:
        hexa = "".join(c * 2 for c in hexa)
    if len(hexa) != 6:
        return None
    try:
        rgb = tuple(int(hexa[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        return None
    # Nearest by squared distance in RGB; ties broken by name so the answer is stable.
    return min(
        COLORS_BY_NAME.items(),
        key=lambda item: (sum((a - b) ** 2 for a, b in zip(item[1][:3], rgb, strict=True)), item[0]),
    )[0]
