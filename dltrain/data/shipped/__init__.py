"""Small real datasets shipped with dltrain, so the quickstart and tests run offline."""
