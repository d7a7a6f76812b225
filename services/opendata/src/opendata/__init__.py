"""Open data: OSLO linked data, privacy-safe aggregates, DCAT-AP Vlaanderen, event streams."""
