"""Lifeboat: backup and recovery for crypto keys and DeFi protocol state."""

__version__ = "0.1.0"
