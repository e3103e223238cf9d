"""§16.7 step 6-7: choosing the response to send upstream when every branch has failed."""

from __future__ import annotations

from sipush.proxy.core import best_response
from sipush.sip import Headers, Response


def response(status: int, *headers: tuple[str, str]) -> Response:
    return Response(status, "x", Headers(headers))


def test_6xx_wins() -> None:
    assert best_response([response(486), response(603), response(404)]).status == 603


def test_lowest_class_and_preferred_4xx() -> None:
    assert best_response([response(500), response(404)]).status == 404
    assert best_response([response(404), response(407), response(486)]).status == 407
    assert best_response([response(302), response(404)]).status == 302


def test_503_becomes_500() -> None:
    assert best_response([response(503)]).status == 500


def test_challenges_are_aggregated() -> None:
    chosen = best_response(
        [
            response(401, ("WWW-Authenticate", 'Digest realm="a"')),
            response(401, ("WWW-Authenticate", 'Digest realm="b"')),
        ]
    )
    assert chosen.headers.lines("WWW-Authenticate") == ('Digest realm="a"', 'Digest realm="b"')
