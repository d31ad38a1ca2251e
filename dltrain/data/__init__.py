"""Stage 2, the data: one reader per source (registered in `sources`), preparation and pipelines."""
