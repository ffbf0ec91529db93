"""The Content-Security-Policy on every page and API answer; test_csp_in_chromium.py shows it enforced."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

HTML_PAGES = ["/", "/api/docs", "/admin/login/"]


def _policy(response) -> dict[str, list[str]]:
    directives = (part.split() for part in response.headers["Content-Security-Policy"].split(";") if part.strip())
    return {name: sources for name, *sources in directives}


class _Assets(HTMLParser):
    """The scripts, stylesheets and icons a page loads, and its inline scripts and styles."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            (self.urls if attrs.get("src") else self.inline).append(attrs.get("src") or "<script>")
        elif tag == "link" and attrs.get("rel") in ("stylesheet", "icon"):
            self.urls.append(attrs["href"])
        elif tag == "style" or "style" in attrs:
            self.inline.append(f"<{tag} style>")


@pytest.mark.parametrize("path", HTML_PAGES)
def test_each_html_page_allows_only_its_own_host_and_no_inline_code(client, path):
    response = client.get(path)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    policy = _policy(response)
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert set(policy) == {"default-src", "script-src", "style-src", "connect-src", "img-src"} | {
        "frame-ancestors", "base-uri", "form-action"
    }  # fmt: skip


@pytest.mark.parametrize("path", HTML_PAGES)
def test_each_html_page_loads_only_files_from_this_host_that_are_there(client, path):
    page = _Assets()
    page.feed(client.get(path).content.decode())
    assert page.inline == []
    assert page.urls, "the page loads its scripts and styles from files"
    for url in page.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert client.get(url).status_code == 200, url


def test_the_api_docs_are_swagger_ui_from_the_sidecar_package_not_a_cdn(client):
    html = client.get("/api/docs").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "https://" not in html
    script = client.get("/api/docs?script=")
    assert script.status_code == 200 and script["Content-Type"] == "application/javascript"
    assert b"SwaggerUIBundle(" in script.content


def test_api_answers_carry_the_same_restrictive_policy(client, db):
    for response in (client.get("/api/v2/market/ticker"), client.get("/health"), client.get("/api/v2/nowhere")):
        assert response["Content-Type"].startswith("application/json")
        assert _policy(response)["default-src"] == ["'none'"]
        assert _policy(response)["frame-ancestors"] == ["'none'"]
