"""Unit tests of ``shared``: one module per shared module, no network, explicit clocks."""
