"""Server URLs as dltrain shows and records them: never with their password (a search's
--storage, an MLflow tracking URI)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "***"
QUERY_PASSWORD = re.compile(r"((?:^|&)password=)[^&]*", re.IGNORECASE)


def shown(url: str) -> str:
    """The URL as messages and run files give it: its password, if any, replaced by ***, in
    user:password@ or in a query's password= (libpq takes either)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL (an unclosed [ in its host): nothing to hide
        return url
    query = QUERY_PASSWORD.sub(rf"\1{HIDDEN}", parts.query)
    if password is None and query == parts.query:
        return url
    netloc = parts.netloc if password is None else parts.netloc.replace(
        f":{password}@", f":{HIDDEN}@", 1)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


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
