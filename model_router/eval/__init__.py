"""Offline evaluation: routing policies on recorded outcomes and reference routers to compare with."""
