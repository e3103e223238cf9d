"""Which transaction a message belongs to (RFC 3261 §17.1.3, §17.2.3, §9.2).

Server side (§17.2.3), two ways:

* **RFC 3261**: the top Via branch starts with the magic cookie ``z9hG4bK``. The key is the
  branch, the Via sent-by and the method, with ACK counted as INVITE (the ACK for a non-2xx
  response belongs to the INVITE transaction). A CANCEL has the INVITE's branch but a key of its
  own (method CANCEL); :func:`cancel_target_key` gives the key of the INVITE it cancels (§9.2).
* **RFC 2543 fallback**, when there is no such branch: Request-URI, To tag, From tag, Call-ID,
  CSeq and top Via. A branch of exactly ``z9hG4bK`` with nothing after it does not count as an
  RFC 3261 branch (RFC 4475 §3.2.1 badbranch). An ACK matches the INVITE whose *response* To tag
  it carries, which a key of the ACK alone cannot say;
  :meth:`sipush.sip.transaction_registry.TransactionRegistry.match_request` checks it.

Client side (§17.1.3): the top Via branch plus the CSeq method (a CANCEL shares the INVITE's
branch, so the method keeps them apart).

Branches compare exactly (case-sensitive), as the sender's own bytes come back; sent-by hosts
compare case-insensitively with the transport's default port filled in (``Via.sent_by``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sipush.errors import ParseError
from sipush.sip.message import Message, Request, Response
from sipush.sip.transaction_tables import TransactionError
from sipush.sip.via import Via

__all__ = [
    "ClientTransactionKey",
    "Rfc2543Key",
    "Rfc3261Key",
    "ServerTransactionKey",
    "cancel_target_key",
    "client_key_for_request",
    "client_transaction_key",
    "server_transaction_key",
]

T = TypeVar("T")

#: Via parameters the receiving side adds (§18.2.1, RFC 3581): not part of the match.
_STAMPED_VIA_PARAMS = frozenset({"received", "rport"})


@dataclass(frozen=True)
class Rfc3261Key:
    """§17.2.3, first half: branch, sent-by, method (ACK counted as INVITE)."""

    branch: str
    sent_by: tuple[str, int]
    method: str


@dataclass(frozen=True)
class Rfc2543Key:
    """§17.2.3, second half: for requests without an RFC 3261 branch."""

    request_uri: str
    to_tag: str | None
    from_tag: str | None
    call_id: str
    cseq_number: int
    method: str
    top_via: tuple[str, str, tuple[str, int], tuple[tuple[str, str | None], ...]]


ServerTransactionKey = Rfc3261Key | Rfc2543Key


@dataclass(frozen=True)
class ClientTransactionKey:
    """§17.1.3: top Via branch and CSeq method."""

    branch: str
    method: str


def server_transaction_key(request: Request) -> ServerTransactionKey:
    """The key of the server transaction ``request`` belongs to (§17.2.3).

    Raises :class:`TransactionError` if the request has no usable top Via, From, To, Call-ID or
    CSeq (the parser normally rejects those first).
    """
    return _server_key(request, _transaction_method(request.method))


def cancel_target_key(cancel: Request) -> ServerTransactionKey:
    """The key of the INVITE server transaction a CANCEL cancels (§9.2)."""
    if cancel.method != "CANCEL":
        raise TransactionError(f"{cancel.method} is not a CANCEL")
    return _server_key(cancel, "INVITE")


def client_key_for_request(request: Request) -> ClientTransactionKey:
    """The key under which a client transaction sending ``request`` waits for responses."""
    branch = _top_via(request).branch
    if not branch:
        raise TransactionError("the request's top Via has no branch (§8.1.1.7)")
    return ClientTransactionKey(branch, request.method)


def client_transaction_key(response: Response) -> ClientTransactionKey:
    """The key of the client transaction ``response`` answers (§17.1.3)."""
    branch = _top_via(response).branch
    if not branch:
        raise TransactionError("the response's top Via has no branch: no transaction matches")
    return ClientTransactionKey(branch, _guard(lambda: response.cseq.method))


def _server_key(request: Request, method: str) -> ServerTransactionKey:
    via = _top_via(request)
    if via.has_rfc3261_branch:
        assert via.branch is not None
        return Rfc3261Key(via.branch, via.sent_by, method)
    to_tag = _guard(lambda: request.to.tag)
    from_tag = _guard(lambda: request.from_.tag)
    call_id = _guard(lambda: request.call_id)
    cseq = _guard(lambda: request.cseq)
    return Rfc2543Key(
        request_uri=str(request.uri),
        to_tag=to_tag,
        from_tag=from_tag,
        call_id=call_id,
        cseq_number=cseq.number,
        method=method,
        top_via=_via_identity(via),
    )


def _transaction_method(method: str) -> str:
    # §17.2.3: "except for ACK, where the method of the request that created the transaction
    # is INVITE".
    return "INVITE" if method == "ACK" else method


def _via_identity(
    via: Via,
) -> tuple[str, str, tuple[str, int], tuple[tuple[str, str | None], ...]]:
    params = tuple(
        (name.lower(), value)
        for name, value in via.params
        if name.lower() not in _STAMPED_VIA_PARAMS
    )
    return via.protocol, via.transport, via.sent_by, params


def _top_via(message: Message) -> Via:
    return _guard(lambda: message.top_via)


def _guard(read: Callable[[], T]) -> T:
    try:
        return read()
    except ParseError as err:
        raise TransactionError(f"no transaction key: {err.detail}") from err
