"""The data stage: one reader per source (registered in `sources`), preparation and pipelines."""
