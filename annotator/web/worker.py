"""The gunicorn worker of ``annotator serve``: a thread is given a request only once it has
arrived, so idle and slow clients cannot take the threads that serve everyone else.

gunicorn's ``gthread`` worker hands every new connection to a thread at once, and that
thread waits up to 5 s for the first byte, then reads headers and body with a blocking
socket and no time limit. Probed (issue 15): 200 idle connections made every other request
time out (10 s); 8 were enough for ~2 s waits; 4 bodies trickling at one byte per 0.5 s
stalled the server for as long as they trickled.

Here the worker's event loop (one thread, non-blocking sockets, the selector gunicorn
already runs) does the waiting:

- a new or kept-alive connection waits in the selector, costing no thread; one that sends
  nothing within ``keepalive`` seconds is closed;
- once bytes arrive the loop reads them as they come, until the headers and, for a body of
  up to ``LOOP_BODY_LIMIT`` bytes (every save, every form), the whole body are in; then a
  thread gets the request with those bytes, and never waits on the client;
- a request that has not arrived ``REQUEST_TIMEOUT`` seconds after its first byte gets
  ``408`` (the API's error shape) and the connection is closed: a trickle is bounded too;
- a larger body (an import), or a chunked one, goes to a thread after its headers, which
  reads it whole *before* the app runs, under a rate rule: after ``REQUEST_TIMEOUT`` seconds
  it must have averaged ``MIN_BODY_RATE``, and no read waits longer than ``REQUEST_TIMEOUT``;
  otherwise 408. Only with credentials (a Bearer token or the session cookie; the app checks
  them), at most ``UPLOADS`` at once per worker (503 beyond), and never past
  ``MAX_UPLOAD_MB`` (413): no request waits on a client while it holds a database lock, and
  no anonymous client makes the server hold a large body;
- then the app runs in one of the worker's ``SLOTS``: at most 2 requests of one worker run
  the app at once (more threads of one process waiting for the GIL raised the saves' p99,
  docs/speed.md). Writing the answer to a client that does not read it gives up the slot
  and waits at most ``SEND_TIMEOUT``;
- bytes read ahead behind an answered request (pipelining) go back to the loop, and the
  loop holds at most ``LOOP_BUDGET`` bytes of requests still arriving (503 beyond).

Errors gunicorn itself answers (a malformed request line, headers too large) use the API's
JSON error shape instead of gunicorn's HTML page.

This builds on gunicorn 27's ``ThreadWorker`` (its selector, ``nr_conns``,
``keepalived_conns``, ``enqueue_req``), hence the pinned major version in pyproject.toml.
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import threading
import time
from functools import partial

import orjson
from gunicorn import util
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.workers.gthread import _DEFER, STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from annotator.core.errors import AnnotatorError, error_body

REQUEST_TIMEOUT = 10.0  # seconds from a request's first byte to its last (see above)
LOOP_BODY_LIMIT = 256 << 10  # bytes: bodies up to this size are read by the event loop
MIN_BODY_RATE = 64 << 10  # bytes/s a larger body must average once REQUEST_TIMEOUT passed
MAX_HEADER = 64 << 10  # bytes: longer headers go to gunicorn's parser, which refuses them
SLOTS = 2  # requests of one worker running the app at once
THREADS = 8  # threads of one worker: SLOTS running, UPLOADS reading, the rest for waits
UPLOADS = 2  # large bodies one worker reads at once (more: 503 with Retry-After)
SEND_TIMEOUT = 30.0  # seconds a client may take to accept a piece of its answer
LOOP_BUDGET = 64 << 20  # bytes the event loop may hold for requests still arriving, in all
READ_STEP = 64 << 10
LINGER_S = 2.0  # how long a closing connection waits for the client to close its side

_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*([0-9]{1,18})[ \t]*(?=\r\n)", re.I)
_ANY_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:", re.I)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.I)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue[ \t]*(?=\r\n)", re.I)


class RequestTimeout(AnnotatorError):
    """The request's body did not arrive in time (408); the connection is closed."""

    status = 408

    def __init__(self, message: str):
        super().__init__(message, [{"field": "body", "reason": "timeout"}])
        self.headers = {"Connection": "close"}


class BodyTooLarge(AnnotatorError):
    status = 413


def timeout_message() -> str:
    return (f"The request did not arrive in time (the server waits {REQUEST_TIMEOUT:g} s for a "
            f"request, then needs {MIN_BODY_RATE >> 10} KiB/s for a large body); send it again.")


def http_error(status: int, reason: str, message: str, details: list | None = None) -> bytes:
    """A complete HTTP/1.1 answer with the API's error shape; the connection closes after it."""
    body = orjson.dumps(error_body(message, status, details))
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode("latin-1") + body


def _write_error(sock, status_int, reason, mesg):
    """gunicorn's ``util.write_error`` (an HTML page), answering the JSON error shape."""
    util.write_nonblock(sock, http_error(status_int, reason, mesg or reason))


def _drained(sock) -> bool:
    """Read what a closing connection's client still sends; True once it closed (or failed)."""
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


class _Arrival:
    """A request arriving on a connection, read by the event loop."""

    __slots__ = ("conn", "buf", "deadline", "started", "sent_continue", "want")

    def __init__(self, conn, idle_deadline: float):
        self.conn = conn
        self.buf = bytearray()
        self.deadline = idle_deadline  # until the first byte: the keep-alive timeout
        self.started = False
        self.sent_continue = False
        self.want = None  # total bytes (headers + body) once the headers are in

    def complete(self) -> bool:
        """Whether a thread may take the request now (reading on the loop side as needed)."""
        buf = self.buf
        if self.want is None:
            end = buf.find(_HEADER_END)
            if end < 0:
                return len(buf) > MAX_HEADER  # gunicorn's parser answers 431
            head = bytes(buf[:end + 2])
            if _TRANSFER_ENCODING.search(head):
                return True  # chunked: read by the thread, under the rate rule
            lengths = _CONTENT_LENGTH.findall(head)
            if len(lengths) > 1 or len(lengths) != len(_ANY_CONTENT_LENGTH.findall(head)):
                return True  # two, or one that is not a plain number: gunicorn refuses it
            length = int(lengths[0]) if lengths else 0
            if length > LOOP_BODY_LIMIT:
                return True
            self.want = end + 4 + length
            http11 = head.split(b"\r\n", 1)[0].rstrip().endswith(b"HTTP/1.1")
            if (len(buf) < self.want and http11 and not self.sent_continue
                    and _EXPECT_CONTINUE.search(head)):
                self.sent_continue = True  # the thread's gunicorn must not send another
                try:
                    self.conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                except OSError:
                    pass
        return len(buf) >= self.want


class _RateRuledSocket:
    """The socket as a large body's reader sees it: every read bounded by the rate rule."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._start = time.monotonic()
        self._got = 0

    def recv(self, size: int) -> bytes:
        # the latest time by which the bytes read so far satisfy the rule
        limit = self._start + REQUEST_TIMEOUT + self._got / MIN_BODY_RATE
        wait = min(REQUEST_TIMEOUT, limit - time.monotonic())
        if wait <= 0:
            raise RequestTimeout(timeout_message())
        self._sock.settimeout(wait)
        try:
            data = self._sock.recv(size)
        except TimeoutError:
            raise RequestTimeout(timeout_message()) from None
        finally:
            self._sock.settimeout(None)
        self._got += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


class ReadBody:
    """A body read before the app ran, as ``wsgi.input``; ``whole`` is all of it (request.py
    takes it as it is instead of copying it again)."""

    def __init__(self, data: bytearray):
        self.whole = data
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        out = bytes(self._view[self._pos:end])
        self._pos = end
        return out

    def readline(self, size: int | None = -1) -> bytes:
        nl = self.whole.find(b"\n", self._pos)
        end = len(self._view) if nl < 0 else nl + 1
        if size is not None and size >= 0:
            end = min(end, self._pos + size)
        return self.read(end - self._pos)

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self):
        return iter(self.readline, b"")


def read_large_body(req, conn, limit: int | None) -> bytearray:
    """The rest of a body the event loop did not read (larger than ``LOOP_BODY_LIMIT``, or
    chunked), under the rate rule and at most ``limit`` bytes; raises RequestTimeout or
    BodyTooLarge."""
    if getattr(req, "_expected_100_continue", False):
        conn.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        req._expected_100_continue = False
    unreader = conn.parser.unreader
    sock = unreader.sock
    unreader.sock = _RateRuledSocket(sock)
    buf = bytearray()
    try:
        while part := req.body.read(1 << 20):
            buf += part
            if limit and len(buf) > limit:
                raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes "
                                   "(ANNOTATOR_MAX_UPLOAD_MB).",
                                   [{"field": "body", "limit": limit, "reason": "too large"}])
    finally:
        unreader.sock = sock
    return buf


class _SendSocket:
    """The socket as the answer's writer sees it: a send that cannot go at once (the client
    is not reading) waits at most SEND_TIMEOUT, and without the worker's slot: the app's work
    is done by then (a streamed export holds a read transaction, never the write lock)."""

    def __init__(self, sock: socket.socket, slots: threading.BoundedSemaphore):
        self._sock, self._slots = sock, slots

    def _waiting(self, fn, *args):
        self._slots.release()
        try:
            self._sock.settimeout(SEND_TIMEOUT)
            return fn(*args)
        finally:
            self._sock.settimeout(None)
            self._slots.acquire()

    def sendall(self, data) -> None:
        try:
            sent = self._sock.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            self._waiting(self._sock.sendall, memoryview(data)[sent:])

    def send(self, data, *flags) -> int:
        return self._waiting(self._sock.send, data, *flags)

    def sendfile(self, file, offset=0, count=None):
        return self._waiting(self._sock.sendfile, file, offset, count)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class ArrivalWorker(ThreadWorker):
    """See the module's docstring."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrivals: dict[int, _Arrival] = {}
        self.buffered = 0  # bytes held by the arrivals
        self.slots = threading.BoundedSemaphore(SLOTS)
        self.uploads = threading.BoundedSemaphore(UPLOADS)
        # requests in a thread (read, app, answer), and whether to retire once none is left
        # (server.py decides when a request was big enough to retire after)
        self.busy_lock = threading.Lock()
        self.busy = 0
        self.retire = False
        self.lingering: dict[int, tuple] = {}  # fd -> (conn, deadline): closing, see _linger

    def init_process(self):
        util.write_error = _write_error  # gunicorn's own error answers: the JSON shape
        super().init_process()

    # --- the event loop's side --------------------------------------------------------

    def accept(self, listener):
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        if self.cfg.is_ssl:  # the TLS handshake happens in the thread, as in gthread
            client_sock.setblocking(True)
            self.enqueue_req(conn)
            return
        self._await(conn)

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection has a next request coming: the loop reads it first."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await(conn, now_readable=True)

    def finish_request(self, conn, fs):
        """As gthread's, except that bytes read ahead behind an answered request (a request
        pipelined behind it) go back to the loop, not straight to a thread, and that a
        connection is closed without blocking the loop: gthread lingers up to 2 s on the
        loop's thread for the client to close its side (measured: a client that got a 503 and
        kept its connection open a second stalled every other request for that second)."""
        try:
            result = fs.result() if not fs.cancelled() else False
        except Exception:
            result = False
        if result is _DEFER and self.alive:
            return super().finish_request(conn, fs)
        if result and result is not _DEFER:
            if conn.parser is not None and conn.parser.unreader.buf.getvalue():
                try:
                    leftover = conn.parser.unreader.take_buffered()
                    conn.sock.setblocking(False)
                    self._await(conn, initial=leftover)
                except Exception:
                    self.log.exception("could not queue a pipelined request; closing")
                    self.nr_conns -= 1
                    self._linger(conn)
                return
            return super().finish_request(conn, fs)  # kept alive: back to the selector
        self.nr_conns -= 1
        self._linger(conn)

    # --- closing without blocking the loop -------------------------------------------------

    def _linger(self, conn) -> None:
        """Close after the client has read our answer: send FIN, read what the client still
        sends until it closes too (or LINGER_S passes), on the selector, then close."""
        sock = conn.sock
        try:
            sock.setblocking(False)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            conn.close()
            return
        if _drained(sock):
            conn.close()
            return
        self.lingering[sock.fileno()] = (conn, time.monotonic() + LINGER_S)
        self.poller.register(sock, selectors.EVENT_READ, partial(self._linger_readable, conn))

    def _linger_readable(self, conn, _sock) -> None:
        if _drained(conn.sock):
            self._end_linger(conn)

    def _end_linger(self, conn) -> None:
        self.lingering.pop(conn.sock.fileno(), None)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        conn.close()

    def _await(self, conn, now_readable: bool = False, initial: bytes = b"") -> None:
        arrival = _Arrival(conn, time.monotonic() + max(self.cfg.keepalive, 1))
        if initial:
            arrival.buf += initial
            arrival.started = True
            arrival.deadline = time.monotonic() + REQUEST_TIMEOUT
            self.buffered += len(initial)
        self.arrivals[conn.sock.fileno()] = arrival
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, arrival))
        if initial and arrival.complete():
            self._hand_over(arrival)
        elif now_readable:
            self._readable(arrival, conn.sock)

    def _readable(self, arrival: _Arrival, _sock) -> None:
        try:
            self._read(arrival)
        except Exception:
            self.log.exception("error reading a request; its connection is closed")
            if arrival.conn.sock.fileno() in self.arrivals:
                self._drop(arrival)

    def _read(self, arrival: _Arrival) -> None:
        sock = arrival.conn.sock
        try:
            data = sock.recv(READ_STEP)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(arrival)
            return
        if self.buffered + len(data) > LOOP_BUDGET:
            self.log.warning("503: %d bytes of requests still arriving; refusing one more",
                             self.buffered)
            self._drop(arrival, http_error(503, "Service Unavailable",
                                           "The server is receiving too many requests at once; "
                                           "try again in a few seconds.",
                                           [{"field": "body", "reason": "busy"}]))
            return
        if not arrival.started:
            arrival.started = True
            arrival.deadline = time.monotonic() + REQUEST_TIMEOUT
        arrival.buf += data
        self.buffered += len(data)
        if arrival.complete():
            self._hand_over(arrival)

    def _forget(self, arrival: _Arrival) -> None:
        if self.arrivals.pop(arrival.conn.sock.fileno(), None) is not None:
            self.buffered -= len(arrival.buf)
        try:
            self.poller.unregister(arrival.conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _drop(self, arrival: _Arrival, answer: bytes | None = None) -> None:
        self._forget(arrival)
        self.nr_conns -= 1
        if answer is None:
            arrival.conn.close()
            return
        try:
            arrival.conn.sock.send(answer)  # small; a full send buffer loses it, nothing else
        except OSError:
            pass
        self._linger(arrival.conn)  # so that the close is not a reset that loses the answer

    def _hand_over(self, arrival: _Arrival) -> None:
        self._forget(arrival)
        conn = arrival.conn
        conn.sock.setblocking(True)
        conn.init()
        conn.parser.unreader.unread(bytes(arrival.buf))
        conn.sent_continue = arrival.sent_continue
        self.enqueue_req(conn)

    def murder_pending(self):
        """gunicorn's pass over deferred connections, plus ours: requests out of time."""
        super().murder_pending()
        now = time.monotonic()
        if not self.alive:  # stopping: a connection that sent nothing yet gets a short grace
            for arrival in self.arrivals.values():
                if not arrival.started:
                    arrival.deadline = min(arrival.deadline, now + STOP_KEEPALIVE_LINGER)
        for conn, deadline in list(self.lingering.values()):
            if deadline <= now or not self.alive:
                self._end_linger(conn)
        for arrival in [a for a in self.arrivals.values() if a.deadline <= now]:
            if arrival.started:
                self._drop(arrival, http_error(408, "Request Timeout", timeout_message(),
                                               [{"field": "body", "reason": "timeout"}]))
            else:
                self._drop(arrival)  # idle: closed, as an expired keep-alive connection

    # --- a thread's side -------------------------------------------------------------

    def handle(self, conn):
        """Runs in a thread. What the loop did not read (headers longer than ``MAX_HEADER``)
        is read under the rate rule too."""
        unreader = conn.parser.unreader if conn.parser is not None else None
        if unreader is None:  # TLS: the handshake and first read happen here, as in gthread
            return super().handle(conn)
        sock = unreader.sock
        conn.raw_sock = sock
        unreader.sock = _RateRuledSocket(sock)
        try:
            return super().handle(conn)
        finally:
            unreader.sock = sock

    def handle_error(self, req, client, addr, exc):
        if isinstance(exc, RequestTimeout):  # only ever before an answer (handle_request)
            self.log.info("408: a request did not arrive in time")
            try:
                client.sendall(http_error(408, "Request Timeout", exc.message, exc.details))
            except OSError:
                pass
            return
        super().handle_error(req, client, addr, exc)

    def handle_request(self, req, conn):
        """Runs in a thread, once the request's headers are parsed. A large body is read here
        first, without a slot (no request waits on a client while it holds a database lock);
        then the app runs in one of the slots, and the answer is written (a client that does
        not read it gives up the slot while it waits)."""
        if getattr(conn, "raw_sock", None) is not None:
            conn.parser.unreader.sock = conn.raw_sock  # the headers are in; the rule is done
        if getattr(conn, "sent_continue", False):
            req._expected_100_continue = False  # the loop has answered it
            conn.sent_continue = False
        with self.busy_lock:
            self.busy += 1
        try:
            if self._body_still_on_the_wire(req):
                early = self._read_large_body(req, conn)
                if early is not None:
                    return early
            raw = conn.sock
            conn.sock = _SendSocket(raw, self.slots)
            try:
                with self.slots:
                    return super().handle_request(req, conn)
            finally:
                conn.sock = raw
        finally:
            with self.busy_lock:
                self.busy -= 1
                if self.retire and self.busy == 0 and self.alive:
                    self.log.info("Worker retiring after a big request (a fresh one is forked).")
                    self.alive = False  # as gunicorn's max_requests: the loop stops gracefully

    def _read_large_body(self, req, conn):
        """Read the body before the app; None when read, else the connection's fate (False:
        close) after answering 401, 408, 413 or 503 here."""
        answer = None
        if not self._has_credentials(req):
            answer = http_error(401, "Unauthorized", "Log in first.",
                                [{"field": "body", "reason": "a large body needs credentials"}])
        elif not self.uploads.acquire(blocking=False):
            answer = http_error(503, "Service Unavailable", f"This server process is receiving "
                                f"{UPLOADS} large uploads already; try again in a few seconds.",
                                [{"field": "body", "reason": "busy"}])
        else:
            try:
                req.body = ReadBody(read_large_body(req, conn, self._limit()))
                return None
            except (RequestTimeout, BodyTooLarge) as e:
                self.log.info("%s for %s %s", e.status, req.method, req.path)
                answer = http_error(e.status, "Request Timeout" if e.status == 408 else
                                    "Content Too Large", e.message, e.details)
            finally:
                self.uploads.release()
        try:
            conn.sock.sendall(answer)
        except OSError:
            pass
        return False

    def _has_credentials(self, req) -> bool:
        """A Bearer token or a session cookie is there (checked for real by the app): an
        anonymous client cannot make the server hold a large body."""
        cookie = getattr(self.wsgi, "config", {}).get("SESSION_COOKIE_NAME", "session")
        for name, value in req.headers:
            if name == "AUTHORIZATION" or (name == "COOKIE" and cookie + "=" in value):
                return True
        return False

    def _limit(self) -> int | None:
        return getattr(self.wsgi, "config", {}).get("MAX_CONTENT_LENGTH")

    def _body_still_on_the_wire(self, req) -> bool:
        reader = getattr(req.body, "reader", None)
        if isinstance(reader, ChunkedReader):
            return True
        length = reader.length if isinstance(reader, LengthReader) else 0
        if not length or length <= LOOP_BODY_LIMIT:
            return False  # none, or read by the event loop
        limit = self._limit()
        return not limit or length <= limit  # a larger one: the app answers 413 unread
