"""The config stage: the pydantic schema (Config and one module per section), YAML loading,
--set overrides, Keras 2 rewrites and the messages that point at a key's line."""
