//! A loopback HTTP server for tests.
