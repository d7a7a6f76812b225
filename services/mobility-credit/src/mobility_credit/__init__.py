"""Mobility credit (Hasselt Mobiliteitskrediet): mobility budgets on the shared double-entry ledger."""
