"""A calendar's feed header for any subscription, from one rendering: the id's bytes put in place.

A subscription's header differs from its calendar's other subscribers' only by the subscription id
(in the unsubscribe link and the SOURCE URL). Rendering it with the icalendar library costs about
half a millisecond, which 100,000 first polls after a restart would pay 100,000 times. An id is
always 36 ASCII characters that need no escaping, so line folding falls at the same places for
every id: render twice with two different ids, the bytes that differ are where the id's hex digits
go. A template that does not reproduce a third rendering exactly is not used (`None`), and the
caller renders each header itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

_ZEROS = uuid.UUID(int=0)
_ONES = uuid.UUID("11111111-1111-1111-1111-111111111111")
_CHECK = uuid.UUID("0123abcd-4567-89ef-fedc-ba9876543210")
_DASH = ord("-")


def _text_index(digit: int) -> int:
    """Where the `digit`-th hex digit of an id sits in its 36-character text (dashes after 8, 12, 16, 20)."""
    return digit + (digit >= 8) + (digit >= 12) + (digit >= 16) + (digit >= 20)


class HeaderTemplate:
    __slots__ = ("_end", "_runs")

    def __init__(self, runs: list[tuple[bytes, int, int]], end: bytes) -> None:
        self._runs = runs  # (bytes before, start, end of the slice of the id's text that follows them)
        self._end = end

    @classmethod
    def of(cls, render: Callable[[uuid.UUID], bytes]) -> HeaderTemplate | None:
        zeros, ones = render(_ZEROS), render(_ONES)
        if len(zeros) != len(ones):
            return None
        positions = [i for i, (a, b) in enumerate(zip(zeros, ones, strict=True)) if a != b]
        if not positions or len(positions) % 32:
            return None
        # A run is a stretch of the id's text, dashes included: usually the whole id, or the two
        # pieces a folded line cuts it into, so filling in an id costs a few slices, not one per group.
        runs: list[tuple[bytes, int, int]] = []
        previous = 0
        index = 0
        while index < len(positions):
            start = index
            while (index + 1) % 32 != 0 and index + 1 < len(positions):
                digit = index % 32
                gap = _text_index(digit + 1) - _text_index(digit)
                here = positions[index]
                if positions[index + 1] - here != gap or (gap == 2 and zeros[here + 1] != _DASH):
                    break
                index += 1
            runs.append((zeros[previous : positions[start]], _text_index(start % 32), _text_index(index % 32) + 1))
            previous = positions[index] + 1
            index += 1
        template = cls(runs, zeros[previous:])
        return template if template.fill(_CHECK) == render(_CHECK) else None

    def fill(self, subscription_id: uuid.UUID, text: str | None = None) -> bytes:
        """The header of `subscription_id` (`text`: its 36-character form, when the caller has it)."""
        digits = (text or str(subscription_id)).encode()
        parts: list[bytes] = []
        for before, start, end in self._runs:
            parts.append(before)
            parts.append(digits[start:end])
        parts.append(self._end)
        return b"".join(parts)

    @property
    def size(self) -> int:
        return sum(len(before) + 64 for before, _, _ in self._runs) + len(self._end)
