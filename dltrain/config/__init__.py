"""The config stage: the pydantic schema, YAML loading, --set overrides and Keras 2 rewrites."""
