"""Tutorial plugin: the Acme SMS API (see docs/writing-a-plugin.md)."""
