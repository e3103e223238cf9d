"""sipush: a SIP edge proxy that wakes sleeping mobile apps with push notifications."""

__version__ = "0.1.0"
