"""What RFC 4475 requires of each torture message, for sipush (see tests/data/rfc4475/INDEX.md).

``PARSE`` is the parser's verdict: ``None`` means the message must parse (and round-trip), a
number is the status of the ParseError it must raise. ``WIRE`` is what a running ``sipush serve``
sends back over UDP: a status code, or ``None`` for silence (responses are never answered, and
nothing can be answered without a Via). Valid requests that sipush cannot route (no upstream is
configured yet) get 480 (§16.5); those are the RFC's "well-formed" verdicts seen from outside.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data" / "rfc4475"

# file: (parser verdict, wire answer, why)
CASES: dict[str, tuple[int | None, int | None, str]] = {
    # §3.1.1 valid messages
    "wsinv": (None, 480, "3.1.1.1 tortuous INVITE: well-formed"),
    "intmeth": (None, 480, "3.1.1.2 unknown method with odd characters: well-formed"),
    "esc01": (None, 480, "3.1.1.3 escapes in URIs: well-formed"),
    "escnull": (None, 480, "3.1.1.4 %00 in user parts: well-formed"),
    "esc02": (None, 480, "3.1.1.5 % that is not an escape, RE%47IST%45R is not REGISTER"),
    "lwsdisp": (None, 480, "3.1.1.6 token display name glued to <"),
    "longreq": (None, 480, "3.1.1.7 very long values"),
    "dblreq": (None, 480, "3.1.1.8 trailing octets after Content-Length 0 are ignored"),
    "semiuri": (None, 480, "3.1.1.9 ; in the user part"),
    "transports": (None, 480, "3.1.1.10 unknown transports in Via"),
    "mpart01": (None, 480, "3.1.1.11 binary multipart body"),
    "unreason": (None, None, "3.1.1.12 response: parsed, never answered"),
    "noreason": (None, None, "3.1.1.13 response with empty reason: parsed, never answered"),
    # §3.1.2 invalid messages
    "badinv01": (400, 400, "3.1.2.1 empty Via/Contact params"),
    "clerr": (400, 400, "3.1.2.2 Content-Length larger than the datagram"),
    "ncl": (400, 400, "3.1.2.3 negative Content-Length"),
    "scalar02": (400, 400, "3.1.2.4 CSeq > 2**32-1"),
    "scalarlg": (400, None, "3.1.2.5 response with huge scalars: discarded"),
    "quotbal": (400, 400, "3.1.2.6 unterminated quoted string"),
    "ltgtruri": (400, 400, "3.1.2.7 Request-URI in <>"),
    "lwsruri": (400, 400, "3.1.2.8 LWS in the Request-URI"),
    "lwsstart": (400, 400, "3.1.2.9 several SPs in the request line"),
    "trws": (400, 400, "3.1.2.10 trailing SPs after the version"),
    "escruri": (400, 400, "3.1.2.11 escaped headers in the Request-URI"),
    "baddate": (None, 480, "3.1.2.12 non-GMT Date: it does not matter to routing, ignored"),
    "regbadct": (400, 400, "3.1.2.13 Contact URI with headers not in <>"),
    "badaspec": (400, 400, "3.1.2.14 spaces inside <>"),
    "baddn": (400, 400, "3.1.2.15 unquoted display names with commas (and no end of headers)"),
    "badvers": (505, 505, "3.1.2.16 SIP/7.0"),
    "mismatch01": (400, 400, "3.1.2.17 CSeq method differs from a known method"),
    "mismatch02": (501, 501, "3.1.2.18 unknown method whose CSeq method differs"),
    "bigcode": (400, None, "3.1.2.19 status code > 699: dropped"),
    # §3.2 transaction layer
    "badbranch": (None, 480, "3.2.1 branch of just the magic cookie: RFC 2543 matching"),
    # §3.3 application layer
    "insuf": (400, 400, "3.3.1 no Call-ID, From, To"),
    "unkscm": (None, 416, "3.3.2 unknown URI scheme"),
    "novelsc": (None, 416, "3.3.3 soap.beep scheme is never routed"),
    "unksm2": (None, 480, "3.3.4 odd schemes in To/From/Contact: a proxy treats it normally"),
    "bext01": (None, 420, "3.3.5 unsupported Proxy-Require"),
    "invut": (None, 480, "3.3.6 unknown body type: a proxy does not care"),
    "regaut01": (None, 480, "3.3.7 unknown Authorization scheme: forwarded unmodified"),
    "multi01": (400, 400, "3.3.8 several Call-ID/To/From/Max-Forwards/CSeq"),
    "mcl01": (400, 400, "3.3.9 conflicting Content-Length"),
    "bcast": (None, None, "3.3.10 response with broadcast Via: dropped"),
    "zeromf": (None, 483, "3.3.11 Max-Forwards 0"),
    "cparam01": (None, 480, "3.3.12 contact-param without <>"),
    "cparam02": (None, 480, "3.3.13 URI param inside <>"),
    "regescrt": (None, 480, "3.3.14 escaped Route header in the Contact URI"),
    "sdp01": (None, 480, "3.3.15 Accept without SDP: a proxy does not care"),
    # §3.4 backward compatibility
    "inv2543": (None, 480, "3.4.1 RFC 2543 INVITE, no Content-Length over UDP"),
    # in the archive, not in the RFC
    "test": (400, None, "no SIP version, header without colon, and no Via to answer to"),
}


def load(name: str) -> bytes:
    return (DATA / f"{name}.dat").read_bytes()
