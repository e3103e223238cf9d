"""The live transactions of one SIP element, found by key (RFC 3261 §17.1.3, §17.2.3, §9.2).

A plain sans-I/O registry: it keeps no clock and runs no timer. The shell that owns it does::

    tx = registry.match_request(request)
    if tx is not None:
        actions = tx.receive(request)                 # retransmission, or the ACK for a non-2xx
    elif request.method == "ACK":
        ...                                           # ACK for a 2xx: straight to the TU (§17.3)
    else:
        tx = new_server_transaction(request, reliable=...)
        registry.add(tx)
        actions = tx.start()

and removes a transaction with :meth:`TransactionRegistry.remove` when its actions include
``Terminate``. A response that matches no client transaction goes to the TU (a proxy forwards it
statelessly, §16.7 / RFC 6026 §7.3).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sipush.sip.message import Request, Response
from sipush.sip.transaction import (
    ClientTransaction,
    ServerInviteTransaction,
    ServerTransaction,
    Transaction,
)
from sipush.sip.transaction_keys import (
    ClientTransactionKey,
    Rfc2543Key,
    ServerTransactionKey,
    cancel_target_key,
    client_transaction_key,
    server_transaction_key,
)
from sipush.sip.transaction_tables import TransactionError

__all__ = ["TransactionRegistry"]

AnyServer = ServerTransaction[Any, Any]
AnyClient = ClientTransaction[Any, Any]


class TransactionRegistry:
    """Server transactions by :func:`server_transaction_key`, client ones by §17.1.3 key."""

    def __init__(self) -> None:
        self._servers: dict[ServerTransactionKey, AnyServer] = {}
        self._clients: dict[ClientTransactionKey, AnyClient] = {}

    def __len__(self) -> int:
        return len(self._servers) + len(self._clients)

    def __iter__(self) -> Iterator[Transaction[Any, Any]]:
        yield from self._servers.values()
        yield from self._clients.values()

    def __contains__(self, transaction: object) -> bool:
        if isinstance(transaction, ServerTransaction):
            return self._servers.get(transaction.key) is transaction
        if isinstance(transaction, ClientTransaction):
            return self._clients.get(transaction.key) is transaction
        return False

    def add(self, transaction: AnyServer | AnyClient) -> None:
        """Register a transaction; a second one with the same key is a :class:`TransactionError`."""
        if isinstance(transaction, ServerTransaction):
            if transaction.key in self._servers:
                raise TransactionError(f"a server transaction with key {transaction.key} exists")
            self._servers[transaction.key] = transaction
        else:
            key = transaction.key
            if key in self._clients:
                raise TransactionError(f"a client transaction with key {key} exists")
            self._clients[key] = transaction

    def remove(self, transaction: AnyServer | AnyClient) -> None:
        """Forget a transaction (after ``Terminate``). Unknown transactions are ignored."""
        if isinstance(transaction, ServerTransaction):
            if self._servers.get(transaction.key) is transaction:
                del self._servers[transaction.key]
        elif self._clients.get(transaction.key) is transaction:
            del self._clients[transaction.key]

    def match_request(self, request: Request) -> AnyServer | None:
        """The server transaction ``request`` belongs to, or ``None`` (§17.2.3).

        For a request without an RFC 3261 branch, an ACK matches the INVITE transaction whose
        final response carried the ACK's To tag (§17.2.3, second half).
        """
        try:
            key = server_transaction_key(request)
        except TransactionError:
            return None
        found = self._servers.get(key)
        if found is not None or request.method != "ACK" or not isinstance(key, Rfc2543Key):
            return found
        # The INVITE usually had no To tag; its final response added one, and the ACK has it.
        invite_tx = self._servers.get(replace(key, to_tag=None))
        if not isinstance(invite_tx, ServerInviteTransaction):
            return None
        response = invite_tx.last_response
        if response is None or response.status < 200 or response.to.tag != key.to_tag:
            return None
        return invite_tx

    def match_cancel_target(self, cancel: Request) -> ServerInviteTransaction | None:
        """The INVITE server transaction a CANCEL cancels, or ``None`` (§9.2)."""
        try:
            key = cancel_target_key(cancel)
        except TransactionError:
            return None
        found = self._servers.get(key)
        return found if isinstance(found, ServerInviteTransaction) else None

    def match_response(self, response: Response) -> AnyClient | None:
        """The client transaction ``response`` answers, or ``None`` (§17.1.3)."""
        try:
            key = client_transaction_key(response)
        except TransactionError:
            return None
        return self._clients.get(key)
