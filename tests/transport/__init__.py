"""Transport tests: real sockets on loopback, and the sans-I/O framer."""
