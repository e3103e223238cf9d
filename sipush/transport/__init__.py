"""Transports: asyncio UDP, TCP and TLS that only move bytes and report flow events."""
