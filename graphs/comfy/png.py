"""Reading the text chunks of a PNG file, where ComfyUI keeps its workflows.

ComfyUI's ``SaveImage`` writes the API-format graph that ran under the key ``prompt``
and the UI-format workflow under ``workflow`` (``tEXt`` chunks, or ``iTXt`` when the text
is not Latin-1). This reader needs only the standard library and never decodes pixels.

>>> import struct, zlib
>>> def chunk(kind, data):
...     return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
>>> png = PNG_SIGNATURE + chunk(b"tEXt", b"prompt\\x00{}") + chunk(b"IEND", b"")
>>> png_text(png)
{'prompt': '{}'}
"""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_BYTES = 64 * 1024 * 1024  # a compressed chunk may not inflate beyond this


class PngTextError(ValueError):
    """The bytes are not a PNG whose text chunks can be read."""


def is_png(data: bytes) -> bool:
    return data[:8] == PNG_SIGNATURE


def png_text(data: bytes) -> dict[str, str]:
    """Every ``tEXt``, ``zTXt`` and ``iTXt`` chunk as ``{keyword: text}`` (the first of a keyword wins)."""
    if not is_png(data):
        raise PngTextError("not a PNG file (bad signature)")
    out: dict[str, str] = {}
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise PngTextError(f"truncated {kind.decode('latin-1')!r} chunk at byte {pos}")
        pos += 12 + length
        if kind == b"IEND":
            break
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            key, text = _text_chunk(kind, body)
            if key and key not in out:
                out[key] = text
    return out


def _text_chunk(kind: bytes, body: bytes) -> tuple[str, str]:
    key, sep, rest = body.partition(b"\x00")
    if not sep:
        return "", ""
    keyword = key.decode("latin-1")
    if kind == b"tEXt":
        return keyword, rest.decode("latin-1")
    if kind == b"zTXt":
        return keyword, _inflate(rest[1:]).decode("latin-1")
    # iTXt: compression flag, method, language tag \0, translated keyword \0, text (UTF-8)
    if len(rest) < 2:
        return "", ""
    compressed = rest[0] == 1
    _lang, _, rest = rest[2:].partition(b"\x00")
    _translated, _, text = rest.partition(b"\x00")
    raw = _inflate(text) if compressed else text
    return keyword, raw.decode("utf-8", errors="replace")


def _inflate(data: bytes) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, MAX_TEXT_BYTES)
    except zlib.error as exc:
        raise PngTextError(f"a compressed text chunk is corrupt: {exc}") from None
    if d.unconsumed_tail:
        raise PngTextError(f"a compressed text chunk inflates beyond {MAX_TEXT_BYTES} bytes")
    return out
