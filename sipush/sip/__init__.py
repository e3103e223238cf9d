"""The sans-I/O SIP core: messages, URIs, headers, transactions. No sockets, asyncio, SQL or HTTP.

Public surface::

    parse_message(data, datagram=True) -> Request | Response   (raises only ParseError)
    Request, Response, Headers, CSeq, Via, NameAddr, SipUri, TelUri, AbsoluteUri
    make_response(request, status, ...)                           (§8.2.6)
"""

from sipush.sip.address import NameAddr, parse_name_addr
from sipush.sip.build import make_response, reason_phrase, response_for_malformed
from sipush.sip.headers import Headers, header_key
from sipush.sip.message import CSeq, Message, Request, Response
from sipush.sip.parser import parse_message, read_raw_head
from sipush.sip.uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri
from sipush.sip.via import MAGIC_COOKIE, Via, parse_via, response_destination, stamp_received

__all__ = [
    "MAGIC_COOKIE",
    "AbsoluteUri",
    "CSeq",
    "Headers",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "SipUri",
    "TelUri",
    "Uri",
    "Via",
    "header_key",
    "make_response",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "read_raw_head",
    "reason_phrase",
    "response_destination",
    "response_for_malformed",
    "stamp_received",
]
