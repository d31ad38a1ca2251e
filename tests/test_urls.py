"""URLs as dltrain shows and records them: never with their password."""

from __future__ import annotations

from dltrain.urls import hides_password, scrubbed, shown


def test_shown_hides_a_password_and_leaves_other_urls_alone() -> None:
    assert shown("http://me:secret@host:5000/x") == "http://me:***@host:5000/x"
    assert shown("sqlite:///runs/mlflow.db") == "sqlite:///runs/mlflow.db"
    assert shown("http://[::1") == "http://[::1"  # not a URL: nothing to hide, no error
    assert shown("0.001") == "0.001"


def test_shown_hides_a_password_given_in_the_query_as_libpq_takes_it() -> None:
    assert shown("postgresql://db/d?user=me&password=secret&sslmode=require") == (
        "postgresql://db/d?user=me&password=***&sslmode=require")
    assert shown("postgresql://me:a@db/d?PASSWORD=b") == "postgresql://me:***@db/d?PASSWORD=***"
    assert shown("postgresql://db/d?old_password=x") == "postgresql://db/d?old_password=x"


def test_scrubbed_hides_the_password_wherever_an_error_quotes_it() -> None:
    error = "API request to http://me:secret@host:5000/api failed (secret)"
    assert scrubbed(error, "http://me:secret@host:5000") == (
        "API request to http://me:***@host:5000/api failed (***)")
    assert scrubbed(error, "http://host:5000") == error


def test_a_url_shown_without_its_password_says_so() -> None:
    assert hides_password(shown("https://me:secret@host"))
    assert not hides_password("https://me@host") and not hides_password("sqlite:///a.db")
    assert not hides_password("http://[::1")
