"""Server URLs as dltrain shows and records them: never with their password (a search's
--storage, an MLflow tracking URI)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"


def shown(url: str) -> str:
    """The URL as messages and run files give it: its password, if any, replaced by ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL (an unclosed [ in its host): nothing to hide
        return url
    if password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(
        f":{parts.password}@", f":{HIDDEN}@", 1)))


def scrubbed(text: str, url: str) -> str:
    """`text` (a server's error, which may quote the URL it was asked) without `url`'s password."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    return text.replace(password, HIDDEN) if password else text


def hides_password(url: str) -> bool:
    """Whether `url` is one `shown` gave, its password replaced by ***."""
    try:
        return urlsplit(url).password == HIDDEN
    except ValueError:
        return False
