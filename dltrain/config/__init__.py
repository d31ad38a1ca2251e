"""Stage 1, the config: the pydantic schema, YAML loading, --set overrides and Keras 2 rewrites."""
