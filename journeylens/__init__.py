"""Journeylens: omnichannel customer analytics."""
