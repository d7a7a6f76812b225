"""The pieces every CityBlocks service is built from: settings, database, auth, errors, app factory."""
