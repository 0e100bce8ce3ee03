"""Function-level tests: both functions' ``main`` driven message by message, and their bindings."""
