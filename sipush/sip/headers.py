"""An immutable, ordered header list with case-insensitive names and compact forms (§7.3).

Headers keep the order and the names as received, so a proxy forwards unknown headers unchanged
(RFC 4475 §3.1.1.1). Lookups go through :func:`header_key`: lower case, compact forms expanded
(§7.3.3: ``v`` is Via, ``l`` is Content-Length, ...). Changing headers returns a new object.

Which headers are comma-separated lists matters (§7.3.1): Via, Contact, Route, Record-Route,
Path, Allow, Supported, ... are split into elements by :meth:`Headers.get_all`; headers whose
values may contain commas themselves (Date, the digest credentials, unknown extension headers)
are returned one value per header line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView

from sipush.sip.grammar import split_commas

# §7.3.3 and the IANA registry of compact forms.
COMPACT_FORMS = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# Headers whose values are comma-separated lists (§7.3.1, §20).
LIST_HEADERS = frozenset(
    {
        "via", "contact", "route", "record-route", "path", "service-route",
        "allow", "allow-events", "supported", "require", "proxy-require", "unsupported",
        "accept", "accept-encoding", "accept-language", "content-encoding", "content-language",
        "warning", "call-info", "alert-info", "error-info", "in-reply-to", "feature-caps",
        "security-client", "security-server", "security-verify", "reason",
    }
)  # fmt: skip

_KEY_CACHE: dict[str, str] = {}
_EMPTY: tuple[str, ...] = ()


def header_key(name: str) -> str:
    """Normalised lookup key for a header name: lower case, compact form expanded."""
    key = _KEY_CACHE.get(name)
    if key is None:
        lower = name.lower()
        key = COMPACT_FORMS.get(lower, lower)
        if len(_KEY_CACHE) < 4096:  # bounded: header names come from the network
            _KEY_CACHE[name] = key
    return key


class Headers:
    """Ordered (name, value) pairs; immutable; names compared case-insensitively."""

    __slots__ = ("_index", "_items", "_keys")

    def __init__(
        self, items: Iterable[tuple[str, str]] = (), keys: tuple[str, ...] | None = None
    ) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple(items)
        if keys is None:
            cached = _KEY_CACHE.get
            found = [cached(name) for name, _ in self._items]
            if None in found:
                found = [header_key(name) for name, _ in self._items]
            keys = tuple(found)  # type: ignore[arg-type]
        self._keys: tuple[str, ...] = keys
        self._index: dict[str, tuple[str, ...]] | None = None

    def by_key(self, key: str) -> tuple[str, ...]:
        """Values of every line whose normalised key (see :func:`header_key`) is ``key``.

        The fast path for code that already holds a key such as ``"via"``. The index behind it
        is built once, on the first lookup. It holds tuples, not lists: a tuple of strings is
        untracked by the garbage collector, and thousands of messages live in transactions.
        """
        index = self._index
        if index is None:
            index = self._build_index()
        return index.get(key, _EMPTY)

    def _build_index(self) -> dict[str, tuple[str, ...]]:
        index: dict[str, tuple[str, ...]] = {}
        for k, (_, value) in zip(self._keys, self._items, strict=True):
            bucket = index.get(k)
            index[k] = (value,) if bucket is None else (*bucket, value)
        self._index = index
        return index

    def shed_index(self) -> None:
        """Drop the lookup index (memory); the next lookup builds it again."""
        self._index = None

    def present_keys(self) -> KeysView[str]:
        """The normalised keys of the headers present (a set-like view)."""
        index = self._index
        if index is None:
            index = self._build_index()
        return index.keys()

    _values = by_key

    # -- reading -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self._values(header_key(name)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"

    @property
    def items(self) -> tuple[tuple[str, str], ...]:
        return self._items

    @property
    def keys(self) -> tuple[str, ...]:
        """The normalised key of each line, in order (see :func:`header_key`)."""
        return self._keys

    def get(self, name: str) -> str | None:
        """Value of the first header line called ``name``, or ``None``."""
        values = self._values(header_key(name))
        return values[0] if values else None

    def lines(self, name: str) -> tuple[str, ...]:
        """Values of every header line called ``name``, unsplit."""
        return tuple(self._values(header_key(name)))

    def get_all(self, name: str) -> tuple[str, ...]:
        """All values: list headers are split at top-level commas (§7.3.1), others per line."""
        key = header_key(name)
        values = self._values(key)
        if key not in LIST_HEADERS:
            return tuple(values)
        out: list[str] = []
        for value in values:
            out.extend(split_commas(value))
        return tuple(out)

    def count(self, name: str) -> int:
        return len(self._values(header_key(name)))

    # -- changing (always a new object) ------------------------------------------------------
    def prepend(self, name: str, value: str) -> Headers:
        """Add a header line before every other line with the same name (or at the top)."""
        key = header_key(name)
        try:
            pos = self._keys.index(key)
        except ValueError:
            pos = 0
        return self.insert(pos, name, value)

    def insert(self, pos: int, name: str, value: str) -> Headers:
        items = list(self._items)
        keys = list(self._keys)
        key = header_key(name)
        items.insert(pos, (name, value))
        keys.insert(pos, key)
        before = self._keys[:pos].count(key) if key in self._keys else 0
        if self._index is None:
            return Headers(items, tuple(keys))
        old = self._index.get(key, ())
        return self._derived(items, tuple(keys), key, (*old[:before], value, *old[before:]))

    def append(self, name: str, value: str) -> Headers:
        key = header_key(name)
        items, keys = (*self._items, (name, value)), (*self._keys, key)
        if self._index is None:
            return Headers(items, keys)
        return self._derived(items, keys, key, (*self._index.get(key, ()), value))

    def _derived(
        self,
        items: Iterable[tuple[str, str]],
        keys: tuple[str, ...],
        changed: str,
        values: tuple[str, ...] | None = None,
    ) -> Headers:
        """A new Headers differing from this one only in the lines of key ``changed`` (whose
        values are ``values``, when the caller knows them): this one's lookup index is reused
        with that key's entry replaced (a proxy derives four or five messages from each one it
        forwards)."""
        headers = Headers(items, keys)
        index = self._index
        if index is not None:
            index = dict(index)
            if values is None:
                values = tuple(
                    [v for (_, v), k in zip(headers._items, keys, strict=True) if k == changed]
                )
            if values:
                index[changed] = values
            else:
                index.pop(changed, None)
            headers._index = index
        return headers

    def remove(self, name: str) -> Headers:
        """Drop every line called ``name``."""
        key = header_key(name)
        if key not in self._keys:
            return self
        kept = [(item, k) for item, k in zip(self._items, self._keys, strict=True) if k != key]
        return self._derived((item for item, _ in kept), tuple(k for _, k in kept), key)

    def replace(self, name: str, value: str) -> Headers:
        """Set the first line called ``name`` to ``value`` and drop the others (or append)."""
        key = header_key(name)
        items: list[tuple[str, str]] = []
        keys: list[str] = []
        done = False
        for item, k in zip(self._items, self._keys, strict=True):
            if k == key:
                if done:
                    continue
                item = (item[0], value)
                done = True
            items.append(item)
            keys.append(k)
        if not done:
            items.append((name, value))
            keys.append(key)
        return self._derived(items, tuple(keys), key)

    def pop_first_value(self, name: str) -> tuple[str | None, Headers]:
        """Remove the first list element of ``name`` (e.g. the top Route, §16.4) and return it."""
        key = header_key(name)
        for i, k in enumerate(self._keys):
            if k == key:
                elements = split_commas(self._items[i][1])
                first, rest = elements[0], elements[1:]
                items = list(self._items)
                keys = list(self._keys)
                if rest:
                    items[i] = (items[i][0], ", ".join(rest))
                else:
                    del items[i]
                    del keys[i]
                return first, self._derived(items, tuple(keys), key)
        return None, self
