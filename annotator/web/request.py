"""The app's request class: a large body is read into one buffer of its final size.

Profiled (a gunicorn worker importing 10,000 documents, a 44 MB body): werkzeug's
``get_data`` reads the body 64 KiB at a time; gunicorn's reader keeps up to 1 MiB of
read-ahead in a BytesIO, copies it on every call, and asked for everything at once it grows
one BytesIO to the whole body and copies it twice more. Each copy of 44 MB touches 11,000
fresh pages, and on this (virtual) machine a fresh page costs 1.5-9 us of system time: reading
the body took 90-600 ms, 46,000-62,000 page faults. Read here: 1 MiB steps (whose buffers
the allocator reuses) into one ``bytearray`` of the body's size, which is what the caller
gets (orjson and the parsers take it as they take ``bytes``).
"""

from __future__ import annotations

from flask import Request as FlaskRequest

LARGE = 1 << 20  # bytes: a smaller body takes werkzeug's way
STEP = 1 << 20  # bytes per read


class Request(FlaskRequest):
    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False):
        n = self.content_length
        if getattr(self, "_cached_data", None) is not None or parse_form_data or as_text \
                or not n or n < LARGE:
            return super().get_data(cache, as_text, parse_form_data)
        if self.max_content_length is not None and n > self.max_content_length:
            return super().get_data(cache, as_text, parse_form_data)  # werkzeug's 413
        # the server's stream itself (werkzeug's wrapper copies each read twice more); never
        # read past CONTENT_LENGTH, as WSGI asks
        stream = self.environ["wsgi.input"]
        whole = getattr(stream, "whole", None)  # read by the server already (worker.ReadBody)
        if isinstance(whole, bytearray) and len(whole) == n:
            if cache:
                self._cached_data = whole
            return whole
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            part = stream.read(min(STEP, n - got))
            if not part:
                break
            view[got:got + len(part)] = part
            got += len(part)
        view.release()
        if got < n:
            del buf[got:]
        if cache:
            self._cached_data = buf
        return buf
