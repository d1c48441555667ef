"""Attacks on a real stack: one test per attack, each asserting the exact outcome."""
