"""What a probe's answer is called when it is not a healthy one: the HTTP status, where a redirect points
(never its query, user or password), and why a 2xx answer is not a health response."""

from __future__ import annotations

import pytest

from collectors.health.probe import ProbeResult, is_html, redirect_target, status_text


@pytest.mark.parametrize(("location", "where"), [
    ("/login?next=/health&token=t0ken", "http://app:8000/login"),
    ("https://user:pw@sso.example.com:8443/auth?state=x#frag", "https://sso.example.com:8443/auth"),
    ("ready", "http://app:8000/health/ready"),
    ("http://[::1", "an unreadable Location"),
    (None, None),
])
def test_redirect_target(location: str | None, where: str | None) -> None:
    assert redirect_target("http://app:8000/health/", location) == where


def test_status_text() -> None:
    assert status_text(503) == "HTTP 503 Service Unavailable"
    assert status_text(599) == "HTTP 599"


@pytest.mark.parametrize(("result", "problem"), [
    (ProbeResult("/h", True, 200, 0.1), None),
    (ProbeResult("/h", True, 204, 0.1), None),
    (ProbeResult("/h", False, None, 1.0, error="timeout"), "unreachable (timeout)"),
    (ProbeResult("/h", True, 503, 0.1), "HTTP 503 Service Unavailable"),
    (ProbeResult("/h", True, 301, 0.1, location="https://app/h/"), "HTTP 301 Moved Permanently, redirect to https://app/h/"),
    (ProbeResult("/h", True, 307, 0.1), "HTTP 307 Temporary Redirect, redirect"),
    (ProbeResult("/h", True, 200, 0.1, parse_error=True, html=True, content_type="text/html"),
     "HTTP 200 OK, an HTML page (text/html): not a health response"),
    (ProbeResult("/h", True, 200, 0.1, parse_error=True), None),  # a plain "OK": the application answered
    (ProbeResult("/h", True, 200, 0.1, too_large=True), None),
    (ProbeResult("/h", True, 200, 0.1, too_large=True, html=True, content_type="text/html"),
     "HTTP 200 OK, an HTML page (text/html): not a health response"),
    (ProbeResult("/h", True, 500, 0.1, too_large=True), "HTTP 500 Internal Server Error"),
])
def test_problem_and_up(result: ProbeResult, problem: str | None) -> None:
    assert result.problem == problem
    assert result.up is (problem is None)


@pytest.mark.parametrize(("content_type", "head", "html"), [
    ("text/html", b"", True),
    ("application/xhtml+xml", b"", True),
    ("text/plain", b"<html>", False),  # the server says what it is
    ("", b"  <!DOCTYPE html><html>", True),
    ("", b"<HTML><body>", True),
    ("", b"OK", False),
    ("application/json", b"{}", False),
])
def test_is_html(content_type: str, head: bytes, html: bool) -> None:
    assert is_html(content_type, head) is html
