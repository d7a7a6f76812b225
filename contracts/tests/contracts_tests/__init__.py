"""Contracts tooling tests: a package, so pytest names the modules `contracts_tests.*`, not `contracts.*`."""
