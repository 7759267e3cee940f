"""The local rehearsal stack: embedded PostgreSQL, stand-in services, receivers."""
